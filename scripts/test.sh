#!/usr/bin/env bash
# README command 2: set up (idempotent), build, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
# Tests run one at a time: each one sets its own thread counts for this 2-core machine.
ctest --output-on-failure --timeout 900 "$@"
