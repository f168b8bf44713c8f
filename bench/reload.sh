#!/usr/bin/env bash
# Reload benchmark: a 5,000-route config reloaded (SIGHUP after rewriting the file)
# while wrk loads the proxy. Reports the time until every worker serves the new
# config, each worker's longest event-loop stall, and wrk's errors and latency.
#
#   bench/reload.sh                     # 2 workers, 5,000 routes, 3 reloads
#   ROUTES=2000 WORKERS=1 bench/reload.sh
#
# Settings (environment): ROUTES WORKERS RELOADS CONNECTIONS QUIVER KEEP_WORKDIR
# PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools reload nginx wrk
bench_run reload
