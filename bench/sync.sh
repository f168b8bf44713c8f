#!/usr/bin/env bash
# quiver sync against dlt's rest_api: 1M records (1,000 pages of 1,000 records with a
# nested object and a list) served by nginx from files, into DuckDB and PostgreSQL;
# records per CPU-second and peak RSS of each loader (~10 min with dlt).
#
#   bench/sync.sh                                   # the anchor job
#   PAGES=50 DLT=0 bench/sync.sh                    # quick look, Quiver only
#   DESTINATIONS=duckdb bench/sync.sh               # one destination
#
# Settings (environment): PAGES RECORDS DESTINATIONS DLT DLT_VENV SYNC_POSTGRES_URL
# QUIVER KEEP_WORKDIR PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools sync nginx taskset:util-linux
bench_need_two_cores sync "loader on one, nginx on the other"
bench_run sync
