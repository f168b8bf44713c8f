#!/usr/bin/env bash
# Apply benchmark: a 5,000-route declaration applied to the config store while wrk
# loads a store-mode `quiver serve`. Reports each apply's duration, the time from the
# apply's return until every worker serves it, each worker's longest event-loop
# stall, and wrk's errors and latency.
#
#   bench/apply.sh                      # 2 workers, 5,000 routes, SQLite, 3 applies
#   STORE=postgresql://postgres@127.0.0.1:5432/test bench/apply.sh
#
# Settings (environment): ROUTES WORKERS APPLIES CONNECTIONS STORE QUIVER KEEP_WORKDIR
# PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools apply nginx wrk
bench_run apply
