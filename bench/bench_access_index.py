"""What indexing "who saw this customer" costs an access event, by the form the event's customer ids take: the
same INSERTs (batches of 40 events, as the writer thread gathers them at saturation) into one table per form,
PostgreSQL's CPU (every backend, the WAL writer, autovacuum: the postmaster's children, from /proc) and this
process's per event, the forms alternating over several rounds; then a VACUUM of each (the GIN pending list's
merge, left for later otherwise), one "who saw customer X" query, and the table's size with its indexes.

    scripts/with-postgres.sh .venv/bin/python bench/bench_access_index.py [--events 4000] [--rounds 3] [--ids 50]
        [--scattered]

The forms: the jsonb list with a GIN jsonb_path_ops index (what migration 0013 made; also with a 32 MB pending
list, and without one, fastupdate off), the GIN index of the ids' blocks of 64 (migration 0015: an expression of
the list, and the same blocks as a column written by this process), an int4[] with intarray's gin__int_ops, an
int8[] with the default GIN array_ops, the jsonb list with no such index (what any index costs; its query scans
the table), and a child table of (customer, event) rows with a B-tree. The query runs before the VACUUM (a GIN
pending list not merged yet is read whole) and after. Raw psycopg, not the ORM:
the forms differ in PostgreSQL, not in Django. Each event names `--ids` consecutive ids from a random one among
100,000 (a page of a list in id order); `--scattered` draws them at random instead (a filtered page).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import _stat, server_cpu_seconds

COLUMNS = "channel, api_key_id, user_id, fields, request_id, path, at"
COMMON = "channel varchar(10), api_key_id bigint, user_id int, fields varchar(200), request_id varchar(64), "
COMMON += "path varchar(200), at timestamptz"
BATCH = 40
CUSTOMERS = 100_000
ID = 12_345  # the customer the query asks about
SHIFT = 6  # the id blocks' form: ids of 64 in a row share one GIN entry
BLOCKS_FUNCTION = (
    "CREATE FUNCTION ev_blocks(ids jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    f"SELECT coalesce(jsonb_agg(DISTINCT v::bigint >> {SHIFT}), '[]') FROM jsonb_array_elements_text(ids) AS x(v) "
    "WHERE v IS NOT NULL $$"
)


class Form:
    def __init__(self, name: str, table: str, ddl: list[str], cast: str, query: str, child: str = "") -> None:
        self.name, self.table, self.ddl, self.cast, self.query = name, table, ddl, cast, query
        self.child = child  # a table of (customer, event) rows beside the events, if the form has one

    def insert(self, cursor: psycopg.Cursor, events: list[list[int]]) -> None:
        rows = ",".join([f"(%s::{self.cast}, 'api', 1, NULL, 'f', 'r', '/p', now())"] * len(events))
        values = [json.dumps(e) for e in events] if self.cast == "jsonb" else events
        returning = " RETURNING id" if self.child else ""
        cursor.execute(f"INSERT INTO {self.table} (ids, {COLUMNS}) VALUES {rows}{returning}", values)
        if returning:
            event_ids = [r[0] for r in cursor.fetchall()]
            cursor.execute(
                f"INSERT INTO {self.child} SELECT unnest(%s::bigint[]), unnest(%s::bigint[])",
                ([c for e in events for c in e], [i for i, e in zip(event_ids, events, strict=True) for _ in e]),
            )


class BlocksColumn(Form):
    """The id blocks in a column of their own, computed here (no function in PostgreSQL)."""

    def insert(self, cursor: psycopg.Cursor, events: list[list[int]]) -> None:
        rows = ",".join(["(%s::jsonb, %s::jsonb, 'api', 1, NULL, 'f', 'r', '/p', now())"] * len(events))
        values = []
        for e in events:
            values += [json.dumps(e), json.dumps(sorted({i >> SHIFT for i in e}))]
        cursor.execute(f"INSERT INTO {self.table} (ids, blocks, {COLUMNS}) VALUES {rows}", values)


def forms() -> list[Form]:
    def table(name: str, ids: str, *index: str) -> list[str]:
        return [f"CREATE TABLE {name} (id bigserial PRIMARY KEY, ids {ids}, {COMMON})", *index,
                f"CREATE INDEX ON {name} (at)"]  # fmt: skip

    return [
        Form("jsonb, GIN jsonb_path_ops (ours)", "ev_jsonb",
             table("ev_jsonb", "jsonb", "CREATE INDEX ON ev_jsonb USING gin (ids jsonb_path_ops)"),
             "jsonb", f"SELECT count(*) FROM ev_jsonb WHERE ids @> '[{ID}]'"),
        Form("jsonb, GIN jsonb_path_ops, pending list 32 MB", "ev_jsonb_pending",
             table("ev_jsonb_pending", "jsonb", "CREATE INDEX ON ev_jsonb_pending USING gin (ids jsonb_path_ops) "
                   "WITH (gin_pending_list_limit = 32768)"),
             "jsonb", f"SELECT count(*) FROM ev_jsonb_pending WHERE ids @> '[{ID}]'"),
        Form("jsonb, GIN jsonb_path_ops, fastupdate off", "ev_jsonb_direct",
             table("ev_jsonb_direct", "jsonb", "CREATE INDEX ON ev_jsonb_direct USING gin (ids jsonb_path_ops) "
                   "WITH (fastupdate = off)"),
             "jsonb", f"SELECT count(*) FROM ev_jsonb_direct WHERE ids @> '[{ID}]'"),
        Form(f"jsonb, GIN jsonb_path_ops on its ids >> {SHIFT} (id blocks)", "ev_blocks",
             [BLOCKS_FUNCTION, *table("ev_blocks", "jsonb",
                                      "CREATE INDEX ON ev_blocks USING gin (ev_blocks(ids) jsonb_path_ops)")],
             "jsonb", f"SELECT count(*) FROM ev_blocks WHERE ev_blocks(ids) @> '[{ID >> SHIFT}]' AND ids @> '[{ID}]'"),
        BlocksColumn(f"jsonb, its ids >> {SHIFT} in a column, GIN jsonb_path_ops", "ev_block_column",
                     table("ev_block_column", "jsonb, blocks jsonb",
                           "CREATE INDEX ON ev_block_column USING gin (blocks jsonb_path_ops)"),
                     "jsonb", f"SELECT count(*) FROM ev_block_column WHERE blocks @> '[{ID >> SHIFT}]' "
                     f"AND ids @> '[{ID}]'"),
        Form("int4[], GIN gin__int_ops", "ev_int4",
             table("ev_int4", "int4[]", "CREATE INDEX ON ev_int4 USING gin (ids gin__int_ops)"),
             "int4[]", f"SELECT count(*) FROM ev_int4 WHERE ids @> ARRAY[{ID}]"),
        Form("int8[], GIN array_ops", "ev_int8",
             table("ev_int8", "int8[]", "CREATE INDEX ON ev_int8 USING gin (ids)"),
             "int8[]", f"SELECT count(*) FROM ev_int8 WHERE ids @> ARRAY[{ID}]::int8[]"),
        Form("jsonb, no index on ids", "ev_plain", table("ev_plain", "jsonb"),
             "jsonb", f"SELECT count(*) FROM ev_plain WHERE ids @> '[{ID}]'"),
        Form("child rows, B-tree", "ev_child",
             [*table("ev_child", "jsonb"), "CREATE TABLE ev_child_ids (customer_id bigint, event_id bigint)",
              "CREATE INDEX ON ev_child_ids (customer_id, event_id)"],
             "jsonb", f"SELECT count(*) FROM ev_child_ids WHERE customer_id = {ID}", child="ev_child_ids"),
    ]  # fmt: skip


def timed_query(cursor: psycopg.Cursor, query: str) -> float:
    """Milliseconds a "who saw customer X" query takes, the mean of 20."""
    started = time.perf_counter()
    for _ in range(20):
        cursor.execute(query)
        cursor.fetchone()
    return (time.perf_counter() - started) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="Events per form and round.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ids", type=int, default=50, help="Customer ids per event.")
    parser.add_argument("--scattered", action="store_true", help="Ids at random, not consecutive.")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("Run under scripts/with-postgres.sh (DATABASE_URL pointing at a PostgreSQL on this machine).")

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]  # type: ignore[index]
        postmaster = _stat(backend)[0]  # the backend's parent
        cursor.execute("CREATE EXTENSION IF NOT EXISTS intarray")
        all_forms = forms()
        for form in all_forms:
            for statement in form.ddl:
                cursor.execute(statement)
        rnd = random.Random(7)
        draw: Callable[[], list[int]]
        if args.scattered:
            draw = lambda: rnd.sample(range(CUSTOMERS), args.ids)  # noqa: E731
        else:
            draw = lambda: list(range(s := rnd.randrange(CUSTOMERS), s + args.ids))  # noqa: E731
        cpu: dict[str, list[tuple[float, float]]] = {f.name: [] for f in all_forms}
        for round_ in range(args.rounds):
            for form in all_forms if round_ % 2 == 0 else all_forms[::-1]:
                events = [draw() for _ in range(args.events)]
                time.sleep(0.5)  # the last form's background work into its own figure
                ours, theirs = time.process_time(), server_cpu_seconds([postmaster]) or 0.0
                for start in range(0, len(events), BATCH):
                    form.insert(cursor, events[start : start + BATCH])
                time.sleep(0.5)  # the WAL writer's share
                ours = time.process_time() - ours
                theirs = (server_cpu_seconds([postmaster]) or 0.0) - theirs
                cpu[form.name].append((ours * 1000 / args.events, theirs * 1000 / args.events))
            print(f"round {round_ + 1} of {args.rounds}", flush=True)

        written = args.events * args.rounds
        print(f"\nms per event, median of {args.rounds} rounds of {args.events:,}, {args.ids} ids an event "
              f"({'scattered' if args.scattered else 'consecutive'}), {BATCH} events an INSERT")  # fmt: skip
        print("| form | this process | PostgreSQL | VACUUM after | together | query before VACUUM | query | size |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for form in all_forms:
            pending = timed_query(cursor, form.query)
            before = server_cpu_seconds([postmaster]) or 0.0
            cursor.execute(f"VACUUM {form.table}")
            if form.child:
                cursor.execute(f"VACUUM {form.child}")
            vacuum = ((server_cpu_seconds([postmaster]) or 0.0) - before) * 1000 / written
            query = timed_query(cursor, form.query)
            extra = f" + pg_total_relation_size('{form.child}')" if form.child else ""
            cursor.execute(f"SELECT pg_total_relation_size('{form.table}'){extra}")
            size = cursor.fetchone()[0] / 1e6  # type: ignore[index]
            mine = statistics.median(m for m, _ in cpu[form.name])
            pg = statistics.median(p for _, p in cpu[form.name])
            print(f"| {form.name} | {mine:.3f} | {pg:.3f} | {vacuum:.3f} | {mine + pg + vacuum:.3f} "
                  f"| {pending:.2f} ms | {query:.2f} ms | {size:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
