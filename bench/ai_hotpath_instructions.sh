#!/usr/bin/env bash
# Instructions one non-streamed chat completion through an AI route costs in Python,
# counted by callgrind: the difference between two runs of bench/ai_hotpath.py
# divided by the extra completions.  Repeatable whatever the machine is doing.
#
#   PYTHON=.venv/bin/python bench/ai_hotpath_instructions.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
low=$(bench_instructions "$bench_dir/ai_hotpath.py" --count 1000 "$@")
high=$(bench_instructions "$bench_dir/ai_hotpath.py" --count 6000 "$@")
echo "$(( (high - low) / 5000 )) instructions per completion"
