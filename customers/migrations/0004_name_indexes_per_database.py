"""Name indexes per database: PostgreSQL's pattern-ops indexes (0002, 0003) already serve equality, so the
plain LOWER() name indexes are kept on SQLite only, where they are the only ones."""

from django.db import migrations

SQLITE_NAME_INDEXES = {
    "customer_last_first_ci": 'LOWER("last_name"), LOWER("first_name")',
    "customer_first_ci": 'LOWER("first_name")',
    "customer_store_last_first_ci": '"store_id", LOWER("last_name"), LOWER("first_name")',
}


def create_sqlite_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        return
    for name, expression in SQLITE_NAME_INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "customers_customer" ({expression})')


def drop_sqlite_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        return
    for name in SQLITE_NAME_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_store_name_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="customer", name="customer_last_first_ci"),
        migrations.RemoveIndex(model_name="customer", name="customer_first_ci"),
        migrations.RemoveIndex(model_name="customer", name="customer_store_last_first_ci"),
        migrations.RunPython(create_sqlite_indexes, drop_sqlite_indexes),
    ]
