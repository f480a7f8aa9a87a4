"""What an API answer's access event costs the servers, by how many are written together: the CPU of this process
(Python, psycopg) and of PostgreSQL (every backend, the WAL writer, autovacuum: the postmaster's children, from
/proc) per event, for events written in INSERTs of 1 (PII_ACCESS_WRITE_SECONDS=0: one per answer) and of more
(the writer thread: what gathers in its interval, PII_ACCESS_WRITE_SECONDS x answers a second per process), the
batch sizes alternating, several rounds. Unlike bench_api's p50s, these figures hardly move with what else runs.

    scripts/with-postgres.sh .venv/bin/python bench/bench_access_events.py [--events 4000] [--rounds 5]
        [--batches 1,10,40,100]

An event as a 50-row list page's would be (50 consecutive customer ids, from a random one of `--customers`);
`--ids 1` for a lookup's; `--stride 20` spaces the ids as one store's page of bench_api's data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_api import postmaster_pid, server_cpu_seconds  # noqa: E402
from bench_env import set_bench_environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="Events per batch size and round.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="1,10,40,100", help="Events per INSERT, comma-separated.")
    parser.add_argument("--ids", type=int, default=50, help="Customer ids per event.")
    parser.add_argument("--customers", type=int, default=100_000, help="The ids events name are among these.")
    parser.add_argument(
        "--stride",
        type=int,
        default=1,
        help="An event's ids this far apart (1: neighbours, a store's page when its customers were written "
        "together; 20: one store's page of 20 stores whose customers were written in turn, as bench_api's are).",
    )
    parser.add_argument(
        "--gin-options",
        default="",
        help='Storage options for the GIN index on customer_ids, e.g. "fastupdate = off" or '
        '"gin_pending_list_limit = 16384" (ALTER INDEX access_customer_blocks SET, before the rounds).',
    )
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    set_bench_environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from customers.models import AccessEvent
    from customers.pii_access import PendingEvent, access_events_write
    from stores.services import api_key_create

    if connection.vendor != "postgresql":
        sys.exit("Run under scripts/with-postgres.sh (or with DATABASE_URL pointing at PostgreSQL).")
    call_command("migrate", verbosity=0)
    if args.gin_options:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER INDEX access_customer_blocks SET ({args.gin_options})")
    key, _ = api_key_create(name="bench")
    postmaster = postmaster_pid()
    fields = "drivers_license,medical_card_number,birthday"
    rnd = random.Random(7)

    def events(n: int) -> list[PendingEvent]:
        # Each event its own run of ids among --customers (a page of a list, a looked-up customer), as the API's
        # answers are: the GIN index of customer_ids then takes entries for many keys, not the same few.
        at = dt.datetime.now(dt.UTC)
        starts = [rnd.randrange(args.customers) for _ in range(n)]
        return [
            PendingEvent(
                key.pk,
                f"req-{i}",
                "/api/v1/customers",
                at,
                list(range(s, s + args.ids * args.stride, args.stride)),
                fields,
            )
            for i, s in enumerate(starts)
        ]

    per_event: dict[int, list[tuple[float, float]]] = {b: [] for b in batches}
    for round_ in range(args.rounds):
        order = batches if round_ % 2 == 0 else batches[::-1]
        for batch in order:
            pending = events(args.events)
            time.sleep(0.5)  # let PostgreSQL's background work of the last way settle into its own figure
            ours, theirs = time.process_time(), server_cpu_seconds([postmaster] if postmaster else [])
            for start in range(0, len(pending), batch):
                access_events_write(pending[start : start + batch])
            time.sleep(0.5)  # the WAL writer's share of these INSERTs
            ours = time.process_time() - ours
            after = server_cpu_seconds([postmaster] if postmaster else [])
            theirs = (after - theirs) if after is not None and theirs is not None else float("nan")
            per_event[batch].append((ours * 1000 / args.events, theirs * 1000 / args.events))
        print(f"round {round_ + 1}: {AccessEvent.objects.count():,} events in the table", flush=True)

    # What the rounds left for later (dead tuples none, but the GIN index's pending list, which autovacuum or a
    # full list merges into the index): a VACUUM now does it; its CPU per event written, for every batch size.
    written = AccessEvent.objects.count()
    before = server_cpu_seconds([postmaster] if postmaster else [])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM customers_accessevent")
    after = server_cpu_seconds([postmaster] if postmaster else [])
    if before is not None and after is not None:
        print(f"VACUUM afterwards: {(after - before) * 1000 / written:.3f} ms of PostgreSQL's CPU per event written")
    print(f"\nCPU per event, ms, median of {args.rounds} rounds of {args.events:,} (min-max); {args.ids} ids an event")
    print("| events per INSERT | this process | PostgreSQL | together | x 8 (p50 at 16 clients on 2 CPUs) |")
    print("|---:|---:|---:|---:|---:|")
    for batch in batches:
        mine = [m for m, _ in per_event[batch]]
        pg = [p for _, p in per_event[batch]]
        both = [m + p for m, p in per_event[batch]]
        print(
            f"| {batch} | {statistics.median(mine):.3f} ({min(mine):.3f}-{max(mine):.3f}) "
            f"| {statistics.median(pg):.3f} ({min(pg):.3f}-{max(pg):.3f}) "
            f"| {statistics.median(both):.3f} | {statistics.median(both) * 8:.2f} ms |"
        )


if __name__ == "__main__":
    main()
