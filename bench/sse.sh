#!/usr/bin/env bash
# SSE benchmark: server-sent event streams straight from the node and through Quiver
# (key-auth + rate-limit on the route) at the same time: time to first event and the
# latency each event gets, and what Quiver adds (p50/p99/max).
#
#   bench/sse.sh                                  # 200 + 200 streams x 100 events, 1 per 100 ms (~10 s)
#   STREAMS=20 EVENTS=20 bench/sse.sh             # quick look
#   QUIVER=.venv/bin/quiver bench/sse.sh          # a quiver that is not on PATH
#
# Settings (environment): STREAMS EVENTS INTERVAL_MS SPREAD QUIVER LOAD_CPU PROXY_CPU
# START_TIMEOUT KEEP_WORKDIR PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools sse taskset:util-linux
bench_need_two_cores sse "Quiver on one, the event node and the client on the other"
bench_run sse
