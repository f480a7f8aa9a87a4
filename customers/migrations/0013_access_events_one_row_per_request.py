"""Access events: one row per request, its customers' ids in a JSON list, instead of one row per customer; no
foreign-key constraints; the key and user indexes partial; on PostgreSQL a GIN index on the list ("who saw this
customer"). What an API answer costs PostgreSQL: one row, no `SELECT ... FOR KEY SHARE` per customer and key.

Existing rows are merged, without loss: the rows of one request that agree on everything but the customer (same
channel, key, user, fields, request id, path and time: what one INSERT wrote) become one row listing their
customers in id order; a row whose customer was cut (erased: customer NULL) lists a null. Backwards, each list is
expanded into one row per element again (a null, or an id whose customer is gone, as customer NULL), so that the
foreign key's constraint can come back."""

from django.conf import settings
from django.db import migrations, models

import customers.models

TABLE = "customers_accessevent"
GIN_INDEX = "access_customers"
# What one request's rows had in common (NULLs group together: GROUP BY treats them as equal).
SAME_REQUEST = ("channel", "api_key_id", "user_id", "fields", "request_id", "path", "at")


def merge_rows(apps, schema_editor):
    """One row per request: the lowest id of each group keeps the group's customer ids; the others go."""
    group = ", ".join(SAME_REQUEST)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"UPDATE {TABLE} AS e SET customer_ids = g.ids FROM ("  # noqa: S608 (our constants only)
            f"SELECT min(id) AS keep, jsonb_agg(customer_id ORDER BY id) AS ids FROM {TABLE} GROUP BY {group}"
            ") AS g WHERE e.id = g.keep"
        )
    else:
        same = " AND ".join(f"o.{c} IS {TABLE}.{c}" for c in SAME_REQUEST)  # IS: NULL equals NULL
        schema_editor.execute(
            f"UPDATE {TABLE} SET customer_ids = (SELECT json_group_array(customer_id) FROM ("  # noqa: S608
            f"SELECT o.customer_id FROM {TABLE} AS o WHERE {same} ORDER BY o.id)) "
            f"WHERE id IN (SELECT min(id) FROM {TABLE} GROUP BY {group})"
        )
    # Every row kept now lists one customer at least (a null counts): the empty lists are the merged ones.
    schema_editor.execute(f"DELETE FROM {TABLE} WHERE customer_ids = '[]'")  # noqa: S608


def expand_rows(apps, schema_editor):
    """One row per customer again; an id that names no customer (erased, or deleted with its store) as NULL."""
    columns = ", ".join(SAME_REQUEST)
    if schema_editor.connection.vendor == "postgresql":
        elements = "jsonb_array_elements_text(e.customer_ids) WITH ORDINALITY AS x(value, n)"
        ordered = "x.n"
    else:
        elements = "json_each(e.customer_ids) AS x"
        ordered = "x.key"
    picked = ", ".join(f"e.{c}" for c in SAME_REQUEST)
    schema_editor.execute(
        f"INSERT INTO {TABLE} (customer_ids, customer_id, {columns}) "  # noqa: S608 (our constants only)
        f"SELECT '[]', c.id, {picked} FROM {TABLE} AS e CROSS JOIN {elements} "
        f"LEFT JOIN customers_customer AS c ON c.id = CAST(x.value AS bigint) "
        f"WHERE e.customer_ids <> '[]' ORDER BY e.id, {ordered}"
    )
    schema_editor.execute(f"DELETE FROM {TABLE} WHERE customer_ids <> '[]'")  # noqa: S608


def create_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # jsonb_path_ops: smaller and faster than the default operator class, and `@>` is all the lookup uses.
        schema_editor.execute(f"CREATE INDEX {GIN_INDEX} ON {TABLE} USING gin (customer_ids jsonb_path_ops)")


def drop_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {GIN_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0012_erasure"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="accessevent", name="access_customer_at"),
        migrations.RemoveIndex(model_name="accessevent", name="access_key_at"),
        migrations.RemoveIndex(model_name="accessevent", name="access_user_at"),
        migrations.AlterField(
            model_name="accessevent",
            name="customer",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="access_events",
                to="customers.customer",
            ),
        ),
        migrations.AlterField(
            model_name="accessevent",
            name="api_key",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to="stores.apikey",
            ),
        ),
        migrations.AlterField(
            model_name="accessevent",
            name="user",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="accessevent",
            name="customer_ids",
            field=customers.models.CustomerIdsField(
                default=list,
                help_text="The customers shown: our ids, in the answer's order; null for one since erased.",
            ),
        ),
        migrations.RunPython(merge_rows, expand_rows, elidable=False),
        migrations.RemoveField(model_name="accessevent", name="customer"),
        migrations.AddIndex(
            model_name="accessevent",
            index=models.Index(
                condition=models.Q(("api_key__isnull", False)), fields=["api_key", "-at"], name="access_key_at"
            ),
        ),
        migrations.AddIndex(
            model_name="accessevent",
            index=models.Index(
                condition=models.Q(("user__isnull", False)), fields=["user", "-at"], name="access_user_at"
            ),
        ),
        migrations.RunPython(create_gin_index, drop_gin_index, elidable=False),
    ]
