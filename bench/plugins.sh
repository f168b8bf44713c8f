#!/usr/bin/env bash
# Plugin benchmark: what key-auth (key-auth + acl, jwt RS256) cost Quiver per request, next
# to Quiver without plugins and nginx, on one core each, same run, same backend.
#
#   bench/plugins.sh                                # 4 configurations, 3 rounds x 10 s (~3 min)
#   DURATION=5 ROUNDS=1 bench/plugins.sh            # quick look
#   CONFIGS="plain key_auth" bench/plugins.sh       # some configurations only
#   QUIVER=.venv/bin/quiver bench/plugins.sh        # a quiver that is not on PATH
#   ISOLATE=1 bench/plugins.sh                      # the machine's other threads kept off the proxy core
#
# Settings (environment): CONFIGS QUIVER DURATION ROUNDS CONNECTIONS WARMUP CONSUMERS
# LOAD_CPU PROXY_CPU START_TIMEOUT ISOLATE KEEP_WORKDIR PYTHON. See bench/README.md.
#
# Every nginx it runs has its own config, pid file, logs and temp dirs in a scratch
# directory; the system nginx service is never started, stopped or reconfigured.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools plugins nginx wrk openssl taskset:util-linux
bench_need_two_cores plugins "proxy on one, backend + wrk on the other"
bench_run plugins
