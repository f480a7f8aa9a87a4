"""CPU per customer of each in-process stage of a full sync, without HTTP or a database: the sandbox's listing
pages are rendered in this process, then decoded (orjson), parsed (the vendor client), validated and sealed (the
mirror's writer: checks, encryption, blind indexes, digest) and turned into the PostgreSQL upsert's parameters
(psycopg's dumping included; nothing is sent).

    .venv/bin/python bench/bench_stages.py --vendor flowhub
    .venv/bin/python bench/bench_stages.py --vendor blaze --compare-with d2b3738

With --compare-with, a copy of that commit's tree (`git archive`, into a temporary directory) and this tree run in
two processes that take turns, one repetition each, so both see the same load; each stage's figure is the
fastest repetition's thread CPU time per customer. On a shared machine wall-clock syncs swing by 2x between runs
of the same code; these figures move by a few percent.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "parse", "validate", "params")


def serve(vendor: str, customers: int) -> None:
    """A worker: one repetition over every page per line read on stdin; its figures as JSON, one line each."""
    sys.path.insert(0, str(Path.cwd()))
    sys.path.insert(0, str(Path.cwd() / "bench"))
    from bench_env import set_bench_environment

    set_bench_environment()
    os.environ["DATABASE_URL"] = "postgres://bench@127.0.0.1:1/none"  # the PostgreSQL statements; never connected
    import django

    django.setup()
    from datetime import UTC, datetime

    import orjson
    import psycopg
    from psycopg.adapt import PyFormat, Transformer

    from customers import writer
    from pos_integrations import get_client
    from pos_sandbox.data import Dataset
    from pos_sandbox.faults import Faults
    from pos_sandbox.tokens import TokenStore
    from pos_sandbox.vendors import DIALECTS, SANDBOX_CREDENTIALS

    faults = Faults(vendors=[vendor])
    dialect = DIALECTS[vendor](Dataset(customers=customers, seed=1, vendors=[vendor]), faults, TokenStore(faults))
    pages = [
        dialect.page(None, None, offset, 500, order=dialect.listing_order)[0].encode()
        for offset in range(0, customers, 500)
    ]
    client = get_client(vendor, base_url="http://127.0.0.1:1/none", credentials=SANDBOX_CREDENTIALS[vendor])
    statements = writer.PostgresPageStatements(store_id=1)
    if hasattr(writer, "_TextArray"):  # what the writer registers on its connection before sending a page
        psycopg.adapters.register_dumper(writer._TextArray, writer._text_array_dumper())
    dump = Transformer().dump_sequence
    now = datetime.now(UTC)
    clock = time.thread_time

    def repetition() -> dict[str, float]:
        spent = dict.fromkeys(STAGES, 0.0)
        for body in pages:
            started = clock()
            items = orjson.loads(body)
            decoded = clock()
            records, _errors = client.parse_items(items)
            parsed = clock()
            rows = writer.validate(records)[0]
            validated = clock()
            params = statements._upsert_params(rows, now)
            dump(params, [PyFormat.BINARY] * len(params))
            done = clock()
            for stage, seconds in zip(
                STAGES, (decoded - started, parsed - decoded, validated - parsed, done - validated), strict=True
            ):
                spent[stage] += seconds
        return {stage: seconds / customers * 1e6 for stage, seconds in spent.items()}

    repetition()  # warm-up
    print("ready", flush=True)
    for _line in sys.stdin:
        print(json.dumps(repetition()), flush=True)


def _worker(tree: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "bench" / "bench_stages.py"), "_serve", args.vendor, str(args.customers)]
    proc = subprocess.Popen(command, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker in {tree} did not start")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", default="flowhub", help="sandbox dialect (default flowhub)")
    parser.add_argument("--customers", type=int, default=3000, help="customers per repetition (default 3,000)")
    parser.add_argument("--repetitions", type=int, default=10, help="per tree; the fastest counts (default 10)")
    parser.add_argument("--compare-with", metavar="COMMIT", help="also run that commit's tree, taking turns")
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory(prefix="bench-stages-")
    trees = {"this": ROOT}
    if args.compare_with:
        base = Path(work.name) / "tree"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.compare_with], cwd=ROOT, capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(base, filter="data")
        trees = {"base": base, "this": ROOT}
    workers = {label: _worker(tree, args) for label, tree in trees.items()}
    best: dict[str, dict[str, float]] = {}
    try:
        for _ in range(args.repetitions):
            for label, proc in workers.items():
                assert proc.stdin is not None
                assert proc.stdout is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                figures = json.loads(proc.stdout.readline())
                best[label] = {s: min(best.get(label, figures)[s], figures[s]) for s in STAGES}
    finally:
        for proc in workers.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
        work.cleanup()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.vendor}: CPU per customer, fastest of {args.repetitions} repetitions (load average {load})")
    print(f"  {'tree':<8}" + "".join(f"{s:>10}" for s in STAGES) + f"{'total':>10}")
    for label, figures in best.items():
        name = args.compare_with if label == "base" else label
        total = sum(figures.values())
        print(f"  {name:<8}" + "".join(f"{figures[s]:>8.1f}us" for s in STAGES) + f"{total:>8.1f}us")
    if "base" in best:
        ratio = sum(best["this"].values()) / sum(best["base"].values())
        print(f"  this/base {ratio:.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
