#!/usr/bin/env bash
# Instructions the proxy's Python work costs per request, counted by callgrind:
# the difference between two runs of bench/hotpath.py divided by the extra requests.
# Repeatable to a fraction of a percent whatever the machine is doing.
#
#   bench/hotpath_instructions.sh              # a route without plugins
#   bench/hotpath_instructions.sh --key-auth   # the same route with key-auth
#   bench/hotpath_instructions.sh --access-log # with a JSON access log to a file
#   bench/hotpath_instructions.sh --call-log   # with the call spool (store mode's default)
#   bench/hotpath_instructions.sh --access-log --metrics # and the request counters
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
low=$(bench_instructions "$bench_dir/hotpath.py" --count 2000 "$@")
high=$(bench_instructions "$bench_dir/hotpath.py" --count 12000 "$@")
echo "$(( (high - low) / 10000 )) instructions per proxied request"
