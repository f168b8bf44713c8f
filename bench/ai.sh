#!/usr/bin/env bash
# AI gateway benchmark: Quiver's AI route (key-auth with a bearer key) against LiteLLM's
# proxy (1 worker, master key), both in front of a fake OpenAI backend (nginx returning a
# fixed chat completion, or a fixed 20-chunk stream), on one core each, same run.
#
#   bench/ai.sh                                     # 3 rounds x 10 s + latency (~5 min)
#   DURATION=5 ROUNDS=1 STREAM_SECONDS=2 bench/ai.sh   # quick look
#   GATEWAYS=litellm bench/ai.sh                    # one gateway only
#   QUIVER=.venv/bin/quiver bench/ai.sh             # a quiver that is not on PATH
#
# LiteLLM is installed from PyPI into a virtualenv of its own (LITELLM_VENV, kept between
# runs), never into Quiver's. Settings (environment): GATEWAYS QUIVER LITELLM_VENV
# LITELLM_SPEC DURATION ROUNDS CONNECTIONS WARMUP STREAM_SECONDS STREAM_MAX LOAD_CPU
# PROXY_CPU START_TIMEOUT KEEP_WORKDIR PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools ai nginx wrk taskset:util-linux
bench_need_two_cores ai "gateway on one, fake backend + load on the other"
bench_run ai
