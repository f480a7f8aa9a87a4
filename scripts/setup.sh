#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs the pinned dependencies (skipped when already current).
# Usage: scripts/setup.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements.lock
[ "${1:-runtime}" = dev ] && lock=requirements-dev.lock
python=${PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python=$candidate
            break
        fi
    done
fi
[ -n "$python" ] || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)." >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(sha256sum "$lock" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "Installing $lock into .venv ..."
    # The log is shown only when the install fails (pip's chatter about local indexes is noise otherwise).
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$lock" >.venv/install.log 2>&1; then
        cat .venv/install.log >&2
        exit 1
    fi
    touch "$stamp"
fi
if [ "${1:-runtime}" = dev ]; then
    # The contract tests convert Blaze's Swagger 2.0 to OpenAPI 3 with swagger2openapi (Node, pinned in its lock).
    tools=tests/pos_integrations/contracts
    tools_stamp="$tools/node_modules/.installed-$(sha256sum "$tools/package-lock.json" | cut -c1-16)"
    if [ ! -f "$tools_stamp" ]; then
        command -v npm >/dev/null || { echo "npm (Node.js) is required for the contract tests." >&2; exit 1; }
        echo "Installing $tools/package-lock.json ..."
        npm ci --prefix "$tools" --no-audit --no-fund --loglevel=error >/dev/null
        touch "$tools_stamp"
    fi
fi
