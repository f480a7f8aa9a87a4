"""Access events: PostgreSQL's GIN index on the customers' ids holds their blocks of 64 (`id >> 6`, each once),
not the ids themselves. A page of a list in id order shows runs of neighbouring ids: its 50 ids are one or two
index entries instead of 50, and that index is what an access event costs (bench/README.md, "Access events and
masking": 0.27 ms of the servers' CPU a 50-row page's event with the ids indexed, 0.12 with their blocks). "Who saw
this customer" asks the index for the customer's block, then keeps the rows whose list holds the id itself
(customers.models.IncludesId).

The blocks are an expression of the ids (`access_id_blocks`, a SQL function), not a column: nothing to backfill or
keep in step, and a process still running the code from before this migration writes rows the index covers.

PostgreSQL only (SQLite has no such index), without a table lock: the new index is built CONCURRENTLY (the events
keep being written meanwhile) before the old one is dropped the same way, so "who saw" always has one of them.
Hence not atomic: an index built CONCURRENTLY cannot be in a transaction. A build that failed half way leaves an
invalid index under the name, dropped before it is built again."""

from django.db import migrations

TABLE = "customers_accessevent"
OLD_INDEX = "access_customers"  # migration 0013's, of the ids
INDEX = "access_customer_blocks"
FUNCTION = "access_id_blocks"
SHIFT = 6  # customers.models.ID_BLOCK_SHIFT when this migration was written; the index holds this one

# A null (an erased customer's id) has no block. DISTINCT: each block once.
CREATE_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {FUNCTION}(ids jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "  # noqa: S608
    f"SELECT coalesce(jsonb_agg(DISTINCT value::bigint >> {SHIFT}), '[]') "
    "FROM jsonb_array_elements_text(ids) "
    "WHERE value IS NOT NULL $$"
)


def _build(schema_editor, name: str, expression: str) -> None:
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    schema_editor.execute(f"CREATE INDEX CONCURRENTLY {name} ON {TABLE} USING gin ({expression} jsonb_path_ops)")


def index_blocks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    _build(schema_editor, INDEX, f"{FUNCTION}(customer_ids)")
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {OLD_INDEX}")


def index_ids(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _build(schema_editor, OLD_INDEX, "customer_ids")
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(jsonb)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0014_partial_blind_indexes")]

    operations = [migrations.RunPython(index_blocks, index_ids, elidable=False)]
