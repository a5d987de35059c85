#!/usr/bin/env bash
# A longer fuzzing run of the client-bytes parsers (tests/unit/test_fuzz_parsers.py).
# Usage: scripts/fuzz.sh [examples per property, default 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
SIGNING_PROXY_FUZZ_EXAMPLES="${1:-20000}" .venv/bin/python -m pytest -q tests/unit/test_fuzz_parsers.py \
  -p no:cacheprovider --hypothesis-show-statistics
