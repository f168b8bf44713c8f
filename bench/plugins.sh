#!/usr/bin/env bash
# Plugin benchmark: what key-auth (and key-auth + acl) cost Quiver per request, next
# to Quiver without plugins and nginx, on one core each, same run, same backend.
#
#   bench/plugins.sh                                # 4 configurations, 3 rounds x 10 s (~3 min)
#   DURATION=5 ROUNDS=1 bench/plugins.sh            # quick look
#   CONFIGS="plain key_auth" bench/plugins.sh       # some configurations only
#   QUIVER=.venv/bin/quiver bench/plugins.sh        # a quiver that is not on PATH
#
# Settings (environment): CONFIGS QUIVER DURATION ROUNDS CONNECTIONS WARMUP CONSUMERS
# LOAD_CPU PROXY_CPU START_TIMEOUT KEEP_WORKDIR PYTHON. See bench/README.md.
#
# Every nginx it runs has its own config, pid file, logs and temp dirs in a scratch
# directory; the system nginx service is never started, stopped or reconfigured.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

# --- tools -----------------------------------------------------------------------
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if ((${#need[@]})); then
    echo "plugins bench: installing ${need[*]}" >&2
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "plugins bench: need root (or sudo) to apt-get install ${need[*]}" >&2
            exit 2
        }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2; then
        "${sudo[@]}" apt-get update >&2
        "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2
    fi
fi

if (($(nproc) < 2)); then
    echo "plugins bench: needs 2 cores (proxy on one, backend + wrk on the other)" >&2
    exit 2
fi

# --- scratch dir and cleanup -----------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/quiver-plugins-bench.XXXXXX")"
chmod 755 "$work" # nginx workers run as an unprivileged user when started by root
bench_pid=""

# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # plugins_bench.py stops its servers itself; ask it to, then give it time.
    if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$bench_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$bench_pid" 2>/dev/null || true
    fi
    # Last resort: anything it started and did not stop (each runs in its own
    # process group, whose id is the pid it recorded).
    if [[ -s "$work/pids" ]]; then
        while read -r pid; do
            kill -TERM -- "-$pid" 2>/dev/null || true
        done <"$work/pids"
        sleep 1
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || true
        done <"$work/pids"
    fi
    if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
        echo "plugins bench: scratch files kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- run -------------------------------------------------------------------------
# In the background so that a signal reaches the trap at once.
"$python" "$here/plugins_bench.py" --workdir "$work" --results "$here/results" &
bench_pid=$!
set +e
wait "$bench_pid"
status=$?
set -e
bench_pid=""
exit "$status"
