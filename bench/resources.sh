#!/usr/bin/env bash
# Instant REST resources benchmark: Quiver's declared resources (SQLite, WAL,
# synchronous=FULL) against json-server 0.17.4, the same 10,000 items, one core each,
# same run: GET by a random id, a filtered sorted page of 20, and creates.
#
#   bench/resources.sh                              # 3 rounds x 10 s per scenario (~4 min)
#   DURATION=3 ROUNDS=1 bench/resources.sh          # quick look
#   SERVERS=quiver SCENARIOS=get bench/resources.sh # one server, one scenario
#   QUIVER=.venv/bin/quiver bench/resources.sh      # a quiver that is not on PATH
#
# json-server is installed with npm into a directory of its own (JSON_SERVER_DIR, kept
# between runs). Settings (environment): SERVERS SCENARIOS QUIVER JSON_SERVER_DIR ITEMS
# DURATION ROUNDS CONNECTIONS WARMUP LOAD_CPU PROXY_CPU START_TIMEOUT KEEP_WORKDIR PYTHON.
# See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools resources wrk taskset:util-linux node:nodejs npm
bench_need_two_cores resources "the server under test on one, wrk on the other"
bench_run resources
