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
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
PY=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
count() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$PY" "$here/otlp_encoding.py" "${@:2}" --count "$1" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    rm -f "$out"
}
mode=${1:-output}
if [ "$mode" = sdk ] && ! "$PY" -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.common" 2>/dev/null; then
    # (the SDK is no dependency of Quiver's: installed here for the comparison only)
    "$PY" -m pip install --quiet opentelemetry-sdk opentelemetry-exporter-otlp-proto-common
fi
low=$(count 1024 "$mode" "${@:2}")
high=$(count 5120 "$mode" "${@:2}")
echo "$(( (high - low) / 4096 )) instructions per sampled exchange ($*)"
