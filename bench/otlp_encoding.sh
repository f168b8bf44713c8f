#!/usr/bin/env bash
# Instructions the OTLP encoding of a sampled exchange's spans costs, counted by
# callgrind: the difference between two runs of bench/otlp_encoding.py divided by
# the extra exchanges.  Repeatable to a fraction of a percent.
#
#   bench/otlp_encoding.sh output                # the tracing output, a write per exchange
#   bench/otlp_encoding.sh output --per-write 64 # 64 exchanges a write
#   bench/otlp_encoding.sh proto                 # the encoding alone
#   bench/otlp_encoding.sh sdk                   # the SDK's span objects and encoder
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mode=${1:-output}
if [ "$mode" = sdk ] && ! "${PYTHON:-python}" -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.common" 2>/dev/null; then
    # (the SDK is no dependency of Quiver's: installed here for the comparison only)
    "${PYTHON:-python}" -m pip install --quiet opentelemetry-sdk opentelemetry-exporter-otlp-proto-common
fi
low=$(bench_instructions "$bench_dir/otlp_encoding.py" "$mode" "${@:2}" --count 1024)
high=$(bench_instructions "$bench_dir/otlp_encoding.py" "$mode" "${@:2}" --count 5120)
echo "$(( (high - low) / 4096 )) instructions per sampled exchange ($*)"
