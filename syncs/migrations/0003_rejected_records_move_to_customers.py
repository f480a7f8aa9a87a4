# ruff: noqa: S608 -- the SQL names tables from model metadata only; values are bound.
"""The records a sync rejected move to customers.RejectedRecord, the quarantine of the mirror's one writer (which
also keeps what live lookups and creates answer that the mirror cannot store): each keeps its store, reason,
payload and time, with its sync as its origin. Copied in one INSERT ... SELECT; reversible."""

from django.db import migrations


def _tables(apps):
    return (
        apps.get_model("syncs", "SyncRecordError")._meta.db_table,
        apps.get_model("syncs", "CustomerSync")._meta.db_table,
        apps.get_model("customers", "RejectedRecord")._meta.db_table,
    )


def _sync_type_id(apps) -> int:
    ContentType = apps.get_model("contenttypes", "ContentType")
    return ContentType.objects.get_or_create(app_label="syncs", model="customersync")[0].pk


def copy_to_customers(apps, schema_editor) -> None:
    errors, syncs, rejected = (schema_editor.quote_name(name) for name in _tables(apps))
    if not apps.get_model("syncs", "SyncRecordError").objects.exists():
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {rejected} (store_id, source, origin_type_id, origin_id, customer_id, reason, payload, "
            f"created_at) SELECT s.store_id, %s, %s, e.sync_id, e.customer_id, e.reason, e.payload, e.created_at "
            f"FROM {errors} e JOIN {syncs} s ON s.id = e.sync_id ORDER BY e.id",
            ["sync", _sync_type_id(apps)],
        )


def copy_back(apps, schema_editor) -> None:
    errors, syncs, rejected = (schema_editor.quote_name(name) for name in _tables(apps))
    sync_type = _sync_type_id(apps)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {errors} (sync_id, customer_id, reason, payload, created_at) "
            f"SELECT r.origin_id, r.customer_id, r.reason, r.payload, r.created_at FROM {rejected} r "
            f"JOIN {syncs} s ON s.id = r.origin_id WHERE r.origin_type_id = %s ORDER BY r.id",
            [sync_type],
        )
        cursor.execute(f"DELETE FROM {rejected} WHERE origin_type_id = %s", [sync_type])


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0007_rejected_records"),
        ("syncs", "0002_resumed_from"),
    ]

    operations = [
        migrations.RunPython(copy_to_customers, copy_back),
        migrations.DeleteModel(name="SyncRecordError"),
    ]
