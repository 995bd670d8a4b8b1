#!/usr/bin/env bash
# The project's single test command: prepares the test environment (OpenBao, Prometheus,
# kubernetes-validate, shellcheck, systemd-analyze), then runs every test. The checks of deploy/
# (promtool check/test rules, kubernetes-validate, systemd-analyze, shellcheck) are Rust tests in
# crates/global/tests/deploy.rs, so they run (and fail the run) with the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-test-env.sh

export MOSAIC_BAO_BIN="$PWD/.test-env/venv/bin/bao"
echo "test.sh: MOSAIC_BAO_BIN=$MOSAIC_BAO_BIN"
MOSAIC_PROMETHEUS_BIN="$(command -v prometheus)"
MOSAIC_PROMTOOL_BIN="$(command -v promtool)"
export MOSAIC_PROMETHEUS_BIN MOSAIC_PROMTOOL_BIN
echo "test.sh: MOSAIC_PROMETHEUS_BIN=$MOSAIC_PROMETHEUS_BIN MOSAIC_PROMTOOL_BIN=$MOSAIC_PROMTOOL_BIN"
export MOSAIC_KUBERNETES_VALIDATE="$PWD/.test-env/venv/bin/kubernetes-validate"
echo "test.sh: MOSAIC_KUBERNETES_VALIDATE=$MOSAIC_KUBERNETES_VALIDATE"

# A failing test's panic message and location, not a backtrace that pushes them out of the
# tail of the log CI keeps.
export RUST_BACKTRACE=0

status=0
# No two modules import each other (issue #12): a structural check, cheap, before the build.
python3 scripts/import-cycles.py || status=1
cargo nextest run --workspace --no-fail-fast --profile ci || status=1
cargo test --workspace --doc || status=1

if [ "$status" -ne 0 ]; then
    echo "test.sh: FAILED" >&2
fi
exit "$status"
