"""The quarantine of the mirror's one writer (customers.writer): the POS records it could not store, from syncs,
live lookups and creates alike, each with its store, where it came from, the reason and the payload. Syncs' own
records move here in syncs 0003."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0006_name_and_birthday_indexes_in_id_order"),
        ("stores", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RejectedRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "source",
                    models.CharField(
                        choices=[("sync", "Sync"), ("lookup", "Live lookup"), ("create", "Create")], max_length=20
                    ),
                ),
                ("origin_id", models.PositiveBigIntegerField(blank=True, null=True)),
                (
                    "customer_id",
                    models.CharField(blank=True, help_text="The POS id, where the record had one.", max_length=64),
                ),
                ("reason", models.TextField()),
                ("payload", models.JSONField(blank=True, help_text="The record as the POS sent it.", null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "origin_type",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                    ),
                ),
                (
                    "store",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rejected_records",
                        to="stores.store",
                    ),
                ),
            ],
            options={
                "verbose_name": "rejected POS record",
                "ordering": ["id"],
                "indexes": [models.Index(fields=["origin_type", "origin_id", "id"], name="rejected_record_origin")],
            },
        ),
    ]
