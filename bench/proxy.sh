#!/usr/bin/env bash
# Proxy benchmark: Quiver against nginx on one core each, same run, same backend.
#
#   bench/proxy.sh                      # nginx and Quiver, 3 rounds x 10 s
#   PROXIES=nginx bench/proxy.sh        # nginx only (e.g. while Quiver is broken)
#   DURATION=5 ROUNDS=1 TLS=0 bench/proxy.sh
#
# Settings (environment): DURATION ROUNDS CONNECTIONS PROXIES QUIVER WARMUP TLS
# LATENCY LAT_RATE LAT_DURATION LAT_ROUNDS LOAD_CPU PROXY_CPU START_TIMEOUT
# KEEP_WORKDIR PYTHON. See bench/README.md.
#
# Every nginx it runs has its own config, pid file, logs and temp dirs in a scratch
# directory; the system nginx service is never started, stopped or reconfigured.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# nginx: backend and reference proxy; wrk: throughput; h2load (nghttp2-client):
# fixed-rate latency (see the comment above h2load_clients in proxy_bench.py).
bench_need_tools proxy nginx wrk h2load:nghttp2-client openssl taskset:util-linux
bench_need_two_cores proxy "proxy on one, backend + load generator on the other"
bench_run proxy
