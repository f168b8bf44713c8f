#!/usr/bin/env bash
# Webhook durability: 1,000 events published through the admin API to a receiver that
# fails half the deliveries, is slow, and stops listening for 30 s; the process that
# delivers them (the admin sidecar) is killed with SIGKILL twice. Every event must
# arrive, verified with the standardwebhooks library; none lost, none dead-lettered.
# Reports the time, duplicates and attempts, on SQLite and PostgreSQL (~5 min).
#
#   PYTHON=.venv/bin/python bench/webhooks_flaky.sh
#   STORES=sqlite EVENTS=200 OUTAGE=10 PYTHON=.venv/bin/python bench/webhooks_flaky.sh
#
# Settings (environment): EVENTS KILLS OUTAGE SEED STORES WEBHOOKS_POSTGRES_URL QUIVER
# KEEP_WORKDIR PYTHON (one with quiver's test extra installed). See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools webhooks_flaky taskset:util-linux
bench_run webhooks_flaky webhooks_flaky.py
