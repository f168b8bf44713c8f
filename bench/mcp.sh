#!/usr/bin/env bash
# MCP benchmark: a tool call through Quiver (OpenAPI -> MCP -> the target) against the
# REST call it stands for, and nginx answering directly, in one run: requests/s,
# requests per Quiver CPU-second, p50/p99 latency, and what the tool call adds.
#
#   bench/mcp.sh                                # 3 rounds x 2 runs x 10 s per scenario (~4 min)
#   DURATION=2 ROUNDS=1 bench/mcp.sh            # quick look
#   SCENARIOS="rest tool" bench/mcp.sh          # without nginx direct
#   QUIVER=.venv/bin/quiver bench/mcp.sh        # a quiver that is not on PATH
#
# Settings (environment): SCENARIOS QUIVER DURATION ROUNDS CONNECTIONS LAT_CONNECTIONS
# WARMUP LOAD_CPU PROXY_CPU START_TIMEOUT KEEP_WORKDIR PYTHON. See bench/README.md.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools mcp nginx wrk taskset:util-linux
bench_need_two_cores mcp "Quiver on one, nginx + wrk on the other"
bench_run mcp
