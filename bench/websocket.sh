#!/usr/bin/env bash
# WebSocket benchmark: 10,000 WebSockets held through one Quiver worker (two when the
# fd limit cannot hold them in one, with how many one worker held), the echo round
# trip at a fixed message rate, memory per connection, and plain GETs meanwhile;
# against nginx and the echo server reached directly, in one run.
#
#   bench/websocket.sh                                       # all setups, 10,000 WebSockets (~2 min)
#   CONNECTIONS=500 RATE=200 WARMUP=2 DURATION=5 bench/websocket.sh   # quick look
#   SETUPS="direct quiver-frames" bench/websocket.sh         # frame-aware relaying only
#   QUIVER=.venv/bin/quiver bench/websocket.sh               # a quiver that is not on PATH
#   ISOLATE=1 bench/websocket.sh                             # the machine's other processes kept off the proxy core
#
# Settings (environment): SETUPS CONNECTIONS RATE MESSAGE_BYTES WARMUP DURATION
# HTTP_REQUESTS CLIENTS SOURCES FD_LIMIT MAX_MESSAGE_SIZE CONNECT_TIMEOUT CONCURRENCY
# WS_PYTHON QUIVER LOAD_CPU PROXY_CPU START_TIMEOUT ISOLATE KEEP_WORKDIR PYTHON.
# See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools websocket nginx taskset:util-linux
bench_need_two_cores websocket "the proxy on one, echo server, clients and driver on the other"
bench_run websocket
