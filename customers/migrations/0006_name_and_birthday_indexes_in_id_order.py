"""Filtered lists come in id order straight from their index (PostgreSQL name indexes; birthday everywhere).

A list filtered by store + last name, by first + last name or by birthday is ordered by id and cut to a page;
with the id at the end of the index (after columns the filter fixes), PostgreSQL reads just the page's rows
instead of every match, then sorting them (~100 per store and last name, ~2,000 + ~5,000 index entries for a
first + last name across stores). The global last-name index now also holds the first name: one index answers
first + last name. Same number of indexes, so the sync's writes cost the same.
"""

from django.db import migrations, models

# name: (old expression, new expression); PostgreSQL only, as in 0002 and 0003.
PATTERN_INDEXES = {
    "customer_store_first_prefix": (
        "store_id, lower(first_name) text_pattern_ops",
        "store_id, lower(first_name) text_pattern_ops, id",
    ),
    "customer_store_last_prefix": (
        "store_id, lower(last_name) text_pattern_ops",
        "store_id, lower(last_name) text_pattern_ops, id",
    ),
    "customer_last_prefix": (
        "lower(last_name) text_pattern_ops",
        "lower(last_name) text_pattern_ops, lower(first_name), id",
    ),
}


def _replace(schema_editor, which: int) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expressions in PATTERN_INDEXES.items():
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(f"CREATE INDEX {name} ON customers_customer ({expressions[which]})")


def forwards(apps, schema_editor):
    _replace(schema_editor, 1)


def backwards(apps, schema_editor):
    _replace(schema_editor, 0)


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_store_index_from_unique_constraint")]

    operations = [
        migrations.RemoveIndex(model_name="customer", name="customer_birthday"),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["birthday", "id"], name="customer_birthday_id"),
        ),
        migrations.RunPython(forwards, backwards),
    ]
