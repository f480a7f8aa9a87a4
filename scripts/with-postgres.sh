#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 cluster: initdb in a temporary directory, a free
# loopback port, DATABASE_URL exported for the command; the cluster is stopped and removed afterwards,
# whatever the outcome. Run as root, the server runs as the `postgres` user.
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
# PG_SERVER_OPTIONS adds server settings, e.g. PG_SERVER_OPTIONS="-c shared_buffers=4GB" (benchmarks).
set -euo pipefail
pg_bin=${PG_BIN:-}
if [ -z "$pg_bin" ]; then
    for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { pg_bin=$dir; break; }
    done
fi
if [ -z "$pg_bin" ] && command -v initdb >/dev/null; then pg_bin=$(dirname "$(command -v initdb)"); fi
[ -n "$pg_bin" ] || { echo "PostgreSQL server binaries (initdb, pg_ctl) not found; set PG_BIN." >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/customer-flow-pg.XXXXXX")
as_pg=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$tmp"
    as_pg=(runuser -u postgres --)
fi
workdir=$PWD
cd "$tmp"  # the server's user may not be able to enter the caller's directory
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 ${PG_SERVER_OPTIONS:-}" \
    start >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $tmp)"
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
cd "$workdir"
set +e
"$@"
status=$?
set -e
exit $status
