#!/usr/bin/env bash
# The project's single test command: prepares the test environment (OpenBao), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-test-env.sh

export MOSAIC_BAO_BIN="$PWD/.test-env/venv/bin/bao"
echo "test.sh: MOSAIC_BAO_BIN=$MOSAIC_BAO_BIN"

status=0
cargo nextest run --workspace --no-fail-fast --profile ci || status=1
cargo test --workspace --doc || status=1

if [ "$status" -ne 0 ]; then
    echo "test.sh: FAILED" >&2
fi
exit "$status"
