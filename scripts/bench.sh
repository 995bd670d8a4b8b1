#!/usr/bin/env bash
# Runs Mosaic's benchmarks and writes bench/RESULTS.md (see bench/README.md).
#
# Installs what it needs, idempotently: OpenBao via scripts/setup-test-env.sh, and Debian's
# etcd-server (the peer of global-writes) when `etcd` is missing. Builds mosaic-bench,
# mosaic-global and mosaic-zone in release, then runs propagation, issuance, the three
# intermediate-mode benchmarks (intermediate-issuance, intermediate-calls, intermediate-outage),
# global-writes, memory and zone-scale with defaults that take about 13 minutes on 2 cores (plus
# the release build: about 17 minutes from a clean target; SCALE=full runs zone-scale at the
# issue's sizes, about 15 minutes more). Override with the variables below, e.g.
# `PROPAGATION_ZONES=10,100 ./scripts/bench.sh`; `BENCHES=issuance,intermediate-outage` runs only
# those (comma-separated subcommand names) and writes only their sections. Everything it starts
# listens on loopback and is stopped when each benchmark ends.
set -euo pipefail
cd "$(dirname "$0")/.."

# SCALE=small (the default, for everyday runs) or SCALE=full (the sizes issue #17 names:
# 10,000 zones, 10,000 data planes); any variable below still overrides either.
SCALE=${SCALE:-small}
case "$SCALE" in
small)
    PROPAGATION_ZONES=${PROPAGATION_ZONES:-10,100,1000}
    MEMORY_ZONES=${MEMORY_ZONES:-0,500,1000}
    MEMORY_DATAPLANES=${MEMORY_DATAPLANES:-0,500,1000}
    ;;
full)
    PROPAGATION_ZONES=${PROPAGATION_ZONES:-10,100,1000,10000}
    PROPAGATION_ROUNDS=${PROPAGATION_ROUNDS:-100}
    MEMORY_ZONES=${MEMORY_ZONES:-0,5000,10000}
    MEMORY_DATAPLANES=${MEMORY_DATAPLANES:-0,5000,10000}
    ;;
*)
    echo "bench.sh: SCALE must be small or full, not '$SCALE'" >&2
    exit 2
    ;;
esac
PROPAGATION_ROUNDS=${PROPAGATION_ROUNDS:-200}
ISSUANCE_CONCURRENCY=${ISSUANCE_CONCURRENCY:-16}
ISSUANCE_COUNT=${ISSUANCE_COUNT:-2000}
ISSUANCE_RSA_COUNT=${ISSUANCE_RSA_COUNT:-300}
INTERMEDIATE_COUNT=${INTERMEDIATE_COUNT:-2000}
INTERMEDIATE_ZONE_COUNT=${INTERMEDIATE_ZONE_COUNT:-5000}
INTERMEDIATE_ZONES=${INTERMEDIATE_ZONES:-2}
INTERMEDIATE_DATAPLANES=${INTERMEDIATE_DATAPLANES:-1000}
OUTAGE_INTERMEDIATE_TTL=${OUTAGE_INTERMEDIATE_TTL:-60}
OUTAGE_LEAF_TTL=${OUTAGE_LEAF_TTL:-20}
OUTAGE_STOP_AFTER=${OUTAGE_STOP_AFTER:-5}
OUTAGE_INTERVAL_MS=${OUTAGE_INTERVAL_MS:-100}
WRITES_CLIENTS=${WRITES_CLIENTS:-1,64}
WRITES_SECONDS=${WRITES_SECONDS:-30}
WRITES_TMPFS_SECONDS=${WRITES_TMPFS_SECONDS:-10}
# zone-scale follows SCALE: small (1,000 data planes, 500 waiting, 30 s outage; ~5 min) or full
# (the issue's 10,000 / 2,000 / 5 min; ~20 min). ZONE_SCALE_ARGS adds options (e.g. --dataplanes 5000).
ZONE_SCALE_ARGS=${ZONE_SCALE_ARGS:-}
OUT=${OUT:-bench/RESULTS.md}
BENCHES=${BENCHES:-}

log() { echo "bench.sh: $*" >&2; }
# Whether benchmark $1 is selected (all are when BENCHES is empty).
want() { [ -z "$BENCHES" ] || [[ ",$BENCHES," == *",$1,"* ]]; }

# 1. OpenBao (and openssl, python venv) as the tests use it.
./scripts/setup-test-env.sh
export MOSAIC_BAO_BIN="${MOSAIC_BAO_BIN:-$PWD/.test-env/venv/bin/bao}"

# 2. etcd, the write peer.
if want global-writes && ! command -v etcd >/dev/null 2>&1; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
    log "installing etcd-server (apt)"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends etcd-server
fi
want global-writes && log "etcd: $(etcd --version 2>/dev/null | head -1)"

# 3. Each simulated zone or data plane holds a socket here and one in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# 4. Release builds (the tests use the debug profile; only this script builds release).
cargo build --release -p mosaic-bench -p mosaic-global -p mosaic-zone
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
BENCH=("$BIN_DIR/mosaic-bench" --bin-dir "$BIN_DIR")

# 5. The machine.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cores=$(nproc)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
kernel=$(uname -sr)
rustc_version=$(rustc --version)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
tmpfs=$(df -T "${TMPDIR:-/tmp}" 2>/dev/null | awk 'NR == 2 {print $2}')
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)

body=$(mktemp)
trap 'rm -f "$body" "$body.err"' EXIT
failed=0
run() {
    local name=$1
    shift
    log "running $name: mosaic-bench $*"
    local t0=$SECONDS
    if "${BENCH[@]}" "$@" >>"$body" 2>"$body.err"; then
        {
            echo ""
            echo "_$name took $((SECONDS - t0)) s (\`mosaic-bench $*\`)._"
            echo ""
        } >>"$body"
    else
        failed=1
        {
            echo "### $name: FAILED"
            echo ""
            echo "\`mosaic-bench $*\` failed after $((SECONDS - t0)) s:"
            echo ""
            echo '```'
            tail -20 "$body.err"
            echo '```'
            echo ""
        } >>"$body"
        log "$name failed; see $OUT"
    fi
}

want propagation && run propagation propagation --zones "$PROPAGATION_ZONES" --rounds "$PROPAGATION_ROUNDS"
want issuance && run issuance issuance --concurrency "$ISSUANCE_CONCURRENCY" --count "$ISSUANCE_COUNT" --rsa-count "$ISSUANCE_RSA_COUNT"
want intermediate-issuance && run intermediate-issuance intermediate-issuance --concurrency "$ISSUANCE_CONCURRENCY" \
    --count "$INTERMEDIATE_COUNT" --zone-count "$INTERMEDIATE_ZONE_COUNT"
want intermediate-calls && run intermediate-calls intermediate-calls --zones "$INTERMEDIATE_ZONES" \
    --dataplanes "$INTERMEDIATE_DATAPLANES" --concurrency "$ISSUANCE_CONCURRENCY"
want intermediate-outage && run intermediate-outage intermediate-outage --intermediate-ttl "$OUTAGE_INTERMEDIATE_TTL" \
    --leaf-ttl "$OUTAGE_LEAF_TTL" --stop-after "$OUTAGE_STOP_AFTER" --interval-ms "$OUTAGE_INTERVAL_MS"
if want global-writes; then
    run global-writes global-writes --clients "$WRITES_CLIENTS" --seconds "$WRITES_SECONDS"
    # Attribution: the same comparison with every data dir on tmpfs, where fsync costs nothing,
    # shows how much of the gap is durability and how much is CPU.
    if [ -d /dev/shm ] && [ "${WRITES_TMPFS:-1}" = 1 ]; then
        TMPDIR=/dev/shm run "global-writes on tmpfs" --variant "attribution: every data dir on tmpfs, fsync is free" \
            global-writes --clients "$WRITES_CLIENTS" --seconds "$WRITES_TMPFS_SECONDS"
    fi
fi
want memory && run memory memory --zones "$MEMORY_ZONES" --dataplanes "$MEMORY_DATAPLANES"
# shellcheck disable=SC2086 # ZONE_SCALE_ARGS is a list of options
want zone-scale && run zone-scale zone-scale --scale "$SCALE" $ZONE_SCALE_ARGS

mkdir -p "$(dirname "$OUT")"
{
    echo "# Mosaic benchmark results"
    echo ""
    echo "Produced by \`./scripts/bench.sh\` (what each number means: [README.md](README.md))."
    echo "Peers are measured side by side in the same run on the same machine: compare ratios, not absolute times."
    echo ""
    echo "| machine | |"
    echo "| --- | --- |"
    echo "| CPU | $cpu |"
    echo "| cores | $cores |"
    echo "| memory | $mem |"
    echo "| kernel | $kernel |"
    echo "| temp dir filesystem (data dirs, fsync) | ${tmpfs:-unknown} |"
    echo "| rustc | $rustc_version |"
    echo "| OpenBao | $("$MOSAIC_BAO_BIN" version 2>/dev/null | head -1) |"
    if want global-writes; then echo "| etcd | $(etcd --version 2>/dev/null | head -1) |"; fi
    echo "| load average at start (1/5/15 min; the machine is shared) | $loadavg |"
    echo "| date (UTC) | $started |"
    echo "| git commit | $commit |"
    echo "| build | release (\`cargo build --release\`) |"
    if [ -n "$BENCHES" ]; then echo "| benchmarks run | $BENCHES (\`BENCHES=$BENCHES\`) |"; fi
    echo ""
    cat "$body"
} >"$OUT"
log "wrote $OUT in $SECONDS s"
exit "$failed"
