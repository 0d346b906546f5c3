#!/usr/bin/env bash
# Create the virtualenvs holding the peer task queues that bench/peers.py measures.
# They are never runtime dependencies of worqr_py.
#
#   bench/.venv-peers                 rq, huey, dramatiq, celery, taskiq + taskiq-redis
#                                     (redis-py 8.x: taskiq-redis needs >=8, kombu >=6.4)
#   bench/.venv-peers/envs/redis5     arq, saq (arq 0.28 pins redis<6, saq[redis] pins <8)
#
# The second env lives inside the first, so bench/.gitignore's `.venv-peers/` covers
# both and `rm -rf bench/.venv-peers` removes both. peers.py picks the env per peer.
#
#   bench/node/node_modules           BullMQ + ioredis (npm install, pinned by bench/node/package-lock.json)
#
# Usage: bash bench/setup_peers.sh [PYTHON]      (default: python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${1:-python3}"
main="$here/.venv-peers"
r5="$main/envs/redis5"

quiet_pip() {  # pip, without this machine's "Location ... is ignored" index warnings
    "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

install_env() {  # install_env VENV PACKAGE...
    local venv="$1"; shift
    [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
    quiet_pip "$venv/bin/python" -m pip install --quiet --upgrade pip
    # One resolve for the whole env; if it fails, package by package, so that one
    # uninstallable peer does not take the others down (peers.py then skips it).
    if ! quiet_pip "$venv/bin/python" -m pip install --quiet "$@"; then
        echo "joint install into $venv failed; installing one by one" >&2
        local p
        for p in "$@"; do
            quiet_pip "$venv/bin/python" -m pip install --quiet "$p" \
                || echo "SKIP: could not install $p into $venv" >&2
        done
    fi
}

install_env "$main" rq huey "dramatiq[redis]" "celery[redis]" taskiq taskiq-redis "redis>=8" hiredis ruff mypy
# saq 0.26.4 imports typing_extensions without declaring it.
install_env "$r5" arq "saq[redis]" typing_extensions "redis<6" hiredis

if command -v npm >/dev/null; then
    (cd "$here/node" && npm install --no-audit --no-fund --loglevel=error) \
        || echo "SKIP: npm install in $here/node failed (BullMQ is then skipped)" >&2
else
    echo "SKIP: no npm on PATH (BullMQ is then skipped)" >&2
fi

for venv in "$main" "$r5"; do
    echo "== $venv"
    "$venv/bin/python" -m pip list 2>/dev/null | grep -iE \
        '^(rq|huey|saq|dramatiq|taskiq|taskiq-redis|celery|kombu|arq|redis|hiredis) ' || true
done
