#!/usr/bin/env bash
# Runs a command against a throwaway Redis server: a free loopback port, no persistence, REDIS_URL exported for
# the command; the server is stopped and its directory removed afterwards, whatever the outcome.
# Debian's redis-server is installed when missing: with apt-get as root (or sudo), otherwise its packages are
# downloaded and unpacked into a cache folder of the user's (no root needed).
# Usage: scripts/with-redis.sh COMMAND [ARGS...]   (REDIS_SERVER=/path/to/redis-server picks a binary)
set -euo pipefail

# Debian's packages unpacked (dpkg -x) into a folder of ours, with the libraries they need beside them.
local_install() {
    local dir=$1
    [ -x "$dir/usr/bin/redis-check-rdb" ] && return 0
    local debs
    debs=$(mktemp -d "${TMPDIR:-/tmp}/customer-flow-redis-debs.XXXXXX")
    echo "Downloading Debian's redis-server into $dir ..." >&2
    (cd "$debs" && apt-get download redis-server redis-tools libjemalloc2 liblzf1 >/dev/null)
    mkdir -p "$dir"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$dir"; done
    rm -rf "$debs"
}

redis_server=${REDIS_SERVER:-}
env_prefix=()
if [ -z "$redis_server" ] && command -v redis-server >/dev/null; then redis_server=$(command -v redis-server); fi
if [ -z "$redis_server" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null && sudo="sudo"; }
    if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
        echo "Installing Debian's redis-server for the Redis tests ..." >&2
        $sudo apt-get update -qq >/dev/null
        # Debian's package would start a system service on 6379 where services may start: we only want the binary.
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
        $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
        redis_server=$(command -v redis-server)
    else
        dir=${XDG_CACHE_HOME:-$HOME/.cache}/customer-flow/redis
        local_install "$dir"
        # /usr/bin/redis-server is Debian's link to redis-check-rdb: the one binary, named by how it is called.
        ln -sf redis-check-rdb "$dir/usr/bin/redis-server"
        redis_server=$dir/usr/bin/redis-server
        env_prefix=(env "LD_LIBRARY_PATH=$dir/usr/lib/x86_64-linux-gnu:$dir/usr/lib/$(uname -m)-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/customer-flow-redis.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
answer=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"${env_prefix[@]}" "$redis_server" --bind 127.0.0.1 --port "$port" --dir "$tmp" --save "" --appendonly no \
    --daemonize no --logfile "$tmp/server.log" --databases 16 &
pid=$!
# Up to 15 s for the server to answer PING (spoken over a socket: redis-cli may not be installed).
ping='
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
'
for _ in $(seq 150); do
    python3 -c "$ping" "$port" && { answer=PONG; break; }
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.1
done
[ "$answer" = PONG ] || { echo "Redis did not answer on 127.0.0.1:$port within 15 s" >&2; cat "$tmp/server.log" >&2; exit 1; }
echo "Redis $("${env_prefix[@]}" "$redis_server" --version | sed -E 's/.*v=([^ ]+).*/\1/') on 127.0.0.1:$port (data in $tmp)"
export REDIS_URL="redis://127.0.0.1:$port/0"
set +e
"$@"
status=$?
set -e
exit $status
