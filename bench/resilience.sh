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

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools resilience nginx wrk taskset:util-linux
bench_need_two_cores resilience "proxy on one, backends + wrk on the other"
bench_run resilience
