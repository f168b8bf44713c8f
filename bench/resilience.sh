#!/usr/bin/env bash
# Resilience benchmark: Quiver under config reloads and a failing node, and the cost
# of balancing + passive health against plain Quiver and nginx.
#
#   bench/resilience.sh                             # all steps (~6 min)
#   STEPS="reload kill" bench/resilience.sh         # some steps: reload, kill, ratio
#   RELOAD_DURATION=10 RELOADS=6 WATCH_RELOADS=3 KILL_DURATION=10 KILL_AT=3 \
#     RESTART_AT=6 DURATION=3 ROUNDS=1 bench/resilience.sh   # quick look
#
# Settings (environment): STEPS QUIVER CONNECTIONS RELOAD_DURATION RELOADS
# WATCH_RELOADS RELOAD_WORKERS RELOAD_TIMEOUT KILL_DURATION KILL_AT RESTART_AT
# KILL_MODES DURATION ROUNDS WARMUP LOAD_CPU PROXY_CPU START_TIMEOUT KEEP_WORKDIR
# PYTHON. See bench/README.md.
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
    echo "resilience bench: installing ${need[*]}" >&2
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "resilience bench: need root (or sudo) to apt-get install ${need[*]}" >&2
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
    echo "resilience bench: needs 2 cores (proxy on one, backends + wrk on the other)" >&2
    exit 2
fi

# --- scratch dir and cleanup -----------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/quiver-resilience-bench.XXXXXX")"
chmod 755 "$work" # nginx workers run as an unprivileged user when started by root
bench_pid=""

# shellcheck disable=SC2317  # reached through the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # resilience_bench.py stops its servers itself; ask it to, then give it time.
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
        echo "resilience bench: scratch files kept in $work" >&2
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
"$python" "$here/resilience_bench.py" --workdir "$work" --results "$here/results" &
bench_pid=$!
set +e
wait "$bench_pid"
status=$?
set -e
bench_pid=""
exit "$status"
