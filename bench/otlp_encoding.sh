#!/usr/bin/env bash
# Instructions the OTLP encoding of a sampled exchange's spans costs, counted by
# callgrind: the difference between two runs of bench/otlp_encoding.py divided by
# the extra exchanges.  Repeatable to a fraction of a percent.
#
#   bench/otlp_encoding.sh proto   # opentelemetry-proto's generated classes (the output's)
#   bench/otlp_encoding.sh sdk     # the SDK's span objects and its exporter's encoder
set -euo pipefail
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
PY=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
count() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$PY" "$here/otlp_encoding.py" "$1" --count "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    rm -f "$out"
}
low=$(count "${1:-proto}" 1024)
high=$(count "${1:-proto}" 5120)
echo "$(( (high - low) / 4096 )) instructions per sampled exchange (${1:-proto})"
