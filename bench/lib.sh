# shellcheck shell=bash
# Shared parts of the benchmark wrappers (bench/proxy.sh, bench/resilience.sh,
# bench/plugins.sh). Sourced, not run; the wrapper sets `set -euo pipefail`.
#
# Each wrapper NAME runs bench/NAME_bench.py in a scratch directory and prefixes its
# messages with "NAME bench:". Settings read here (environment): KEEP_WORKDIR PYTHON.

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# bench_need_tools NAME TOOL...
# Installs with apt-get what is not on PATH. TOOL is a command whose package has the
# same name, or COMMAND:PACKAGE (e.g. h2load:nghttp2-client). Exits 2 when it would
# need root and there is no sudo.
bench_need_tools() {
    local name=$1 tool need=() sudo=()
    shift
    for tool in "$@"; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
    done
    ((${#need[@]})) || return 0
    echo "$name bench: installing ${need[*]}" >&2
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || {
            echo "$name bench: need root (or sudo) to apt-get install ${need[*]}" >&2
            exit 2
        }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2; then
        "${sudo[@]}" apt-get update >&2
        "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2
    fi
}

# bench_need_two_cores NAME WHY
# Exits 2 on a machine with fewer than 2 cores; WHY says what runs where.
bench_need_two_cores() {
    if (($(nproc) < 2)); then
        echo "$1 bench: needs 2 cores ($2)" >&2
        exit 2
    fi
}

# bench_run NAME [SCRIPT]
# Runs bench/NAME_bench.py (or bench/SCRIPT) with a fresh scratch directory and exits
# with its status.
# On exit, Ctrl-C, SIGTERM or SIGHUP it asks the Python side to stop its servers,
# then stops whatever it left behind and removes the scratch directory (kept with
# KEEP_WORKDIR=1).
bench_run() {
    bench_name=$1
    bench_work="$(mktemp -d "${TMPDIR:-/tmp}/quiver-$bench_name-bench.XXXXXX")"
    chmod 755 "$bench_work" # nginx workers run as an unprivileged user when started by root
    bench_pid=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP

    # In the background so that a signal reaches the trap at once instead of after
    # the Python side returns.
    local status
    "${PYTHON:-python3}" "$bench_dir/${2:-${bench_name}_bench.py}" \
        --workdir "$bench_work" --results "$bench_dir/results" &
    bench_pid=$!
    set +e
    wait "$bench_pid"
    status=$?
    set -e
    bench_pid=""
    exit "$status"
}

# shellcheck disable=SC2317  # reached through the trap
bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    # NAME_bench.py stops its servers itself; ask it to, then give it time.
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
    if [[ -s "$bench_work/pids" ]]; then
        while read -r pid; do
            kill -TERM -- "-$pid" 2>/dev/null || true
        done <"$bench_work/pids"
        sleep 1
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || true
        done <"$bench_work/pids"
    fi
    if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
        echo "$bench_name bench: scratch files kept in $bench_work" >&2
    else
        rm -rf "$bench_work"
    fi
    exit "$rc"
}

# bench_instructions SCRIPT ARG...
# Instructions callgrind counts for `$PYTHON SCRIPT ARG...` (user space, the whole run):
# the counting wrappers run it twice at two sizes and divide the difference.
bench_instructions() {
    local out
    command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "${PYTHON:-python}" "$@" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    rm -f "$out"
}
