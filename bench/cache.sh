#!/usr/bin/env bash
# Cache benchmark: a proxy-cache HIT next to a plain proxied request (and nginx), in
# requests per proxy CPU-second, on one core each, same run, same backend.
#
#   bench/cache.sh                                  # 3 configurations, 3 rounds x 10 s (~2 min)
#   DURATION=5 ROUNDS=1 bench/cache.sh              # quick look
#   CONFIGS="plain cache_hit" bench/cache.sh        # some configurations only
#   QUIVER=.venv/bin/quiver bench/cache.sh          # a quiver that is not on PATH
#
# Settings (environment): CONFIGS QUIVER DURATION ROUNDS CONNECTIONS WARMUP LOAD_CPU
# PROXY_CPU START_TIMEOUT KEEP_WORKDIR PYTHON. See bench/README.md.
#
# Every nginx it runs has its own config, pid file, logs and temp dirs in a scratch
# directory; the system nginx service is never started, stopped or reconfigured.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools cache nginx wrk taskset:util-linux
bench_need_two_cores cache "proxy on one, backend + wrk on the other"
bench_run cache
