"""Drop the customer table's own index on store_id: the unique (store, customer_id) constraint leads with the
store and serves every store lookup, and each index slows every sync write.

Done with DROP INDEX rather than AlterField: on SQLite AlterField rebuilds the table, which would lose the
name indexes migration 0004 created outside the model state.
"""

from django.db import migrations, models


def _store_indexes(schema_editor) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "customers_customer")
    return [
        name
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["store_id"]
    ]


def drop_store_index(apps, schema_editor) -> None:
    for name in _store_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_store_index(apps, schema_editor) -> None:
    if not _store_indexes(schema_editor):
        model = apps.get_model("customers", "Customer")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[model._meta.get_field("store")]))


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_name_indexes_per_database"),
        ("stores", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="store",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="customers",
                        to="stores.store",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_store_index, create_store_index)],
        ),
    ]
