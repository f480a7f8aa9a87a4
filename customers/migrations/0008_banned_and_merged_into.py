"""A customer's POS ban (`banned`) and, for one merged away, its survivor (`merged_into_customer_id`).

On SQLite, adding a NOT NULL column rebuilds the table, which drops the name indexes 0004 made by hand (they are
not in the model's state); they are made again here, either way.
"""

import importlib

from django.db import migrations, models

_names = importlib.import_module("customers.migrations.0004_name_indexes_per_database")


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_rejected_records")]

    operations = [
        # Backwards, removing the columns rebuilds the table again: this, run last then, makes the indexes again.
        migrations.RunPython(migrations.RunPython.noop, _names.create_sqlite_indexes),
        migrations.AddField(
            model_name="customer",
            name="banned",
            field=models.BooleanField(
                default=False, help_text="Banned at the POS (false where the vendor has no ban flag)."
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="merged_into_customer_id",
            field=models.CharField(
                blank=True,
                help_text="The POS merged this customer into the one with this POS id (same store): inactive here.",
                max_length=64,
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(condition=models.Q(("banned", True)), fields=["id"], name="customer_banned"),
        ),
        migrations.RunPython(_names.create_sqlite_indexes, migrations.RunPython.noop),
    ]
