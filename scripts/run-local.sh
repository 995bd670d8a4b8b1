#!/usr/bin/env bash
# The main job: a local deployment that issues real Vault certificates.
#
# It starts an OpenBao dev server, configures it exactly as the Kong Mesh Vault docs (seed 000)
# say with the real `bao` CLI, starts a global control plane, applies the seed's Mesh (token in a
# Secret) with mosaicctl (the global accepts it only after a test issuance from Vault), starts two
# zones that receive the Mesh over KDS (TLS, zone tokens), and one mosaic-dp per zone that
# registers a dataplane of service `backend` with a dataplane token and receives its certificate
# over SDS from its zone, which issues it from the same Vault. It prints each data plane's SPIFFE
# identity, issuer and expiry, and the zones' CA health as the global sees it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-test-env.sh >/dev/null
BAO="$PWD/.test-env/venv/bin/bao"
cargo build --workspace --quiet
CTL="$PWD/target/debug/mosaicctl"
GLOBAL="$PWD/target/debug/mosaic-global"

work="$PWD/mosaic-data/run-local"
rm -rf "$work" && mkdir -p "$work"

free_pair() { # an even port P with P and P+1 free (OpenBao's cluster listener takes P+1)
    python3 - <<'PY'
import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p % 2: p -= 1
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p)); b = socket.socket(); b.bind(("127.0.0.1", p + 1))
        a.close(); b.close(); print(p); break
    except OSError:
        continue
PY
}
port=$(free_pair)
export VAULT_ADDR="http://127.0.0.1:$port" BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN=root VAULT_TOKEN=root
HOME="$work" "$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" >"$work/openbao.log" 2>&1 &
bao_pid=$!
global_pid=""
zone_pids=""
dp_pids=""
cleanup() {
    for p in $dp_pids $zone_pids; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    [ -n "$global_pid" ] && kill -TERM "$global_pid" 2>/dev/null && wait "$global_pid" 2>/dev/null
    kill "$bao_pid" 2>/dev/null; wait "$bao_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    "$BAO" status >/dev/null 2>&1 && break
    sleep 0.2
done
"$BAO" status >/dev/null || { echo "OpenBao did not start; see $work/openbao.log" >&2; exit 1; }
echo "==> OpenBao dev server at $VAULT_ADDR"

echo "==> Seed 000, step 1 (Root CA): PKI kmesh-pki-default for mesh default"
"$BAO" secrets enable -path=kmesh-pki-default pki >/dev/null
"$BAO" secrets tune -max-lease-ttl=87600h kmesh-pki-default >/dev/null
"$BAO" write -field=certificate kmesh-pki-default/root/generate/internal \
    common_name="Mosaic Default" uri_sans="spiffe://default" ttl=87600h >"$work/ca.pem" 2>>"$work/bao-cli.log"

echo "==> Step 2: role dataplane-proxies"
"$BAO" write kmesh-pki-default/roles/dataplane-proxies \
    allowed_uri_sans="spiffe://default/*,kuma://*" \
    key_usage="KeyUsageKeyEncipherment,KeyUsageKeyAgreement,KeyUsageDigitalSignature" \
    ext_key_usage="ExtKeyUsageServerAuth,ExtKeyUsageClientAuth" \
    client_flag=true require_cn=false allowed_domains="mesh" allow_subdomains=true \
    basic_constraints_valid_for_non_ca=true max_ttl="720h" ttl="720h" >/dev/null

echo "==> Step 3: policy kmesh-default-dataplane-proxies (issue only)"
cat >"$work/policy.hcl" <<'HCL'
path "/kmesh-pki-default/issue/dataplane-proxies"
{
  capabilities = ["create", "update"]
}
HCL
"$BAO" policy write kmesh-default-dataplane-proxies "$work/policy.hcl" >/dev/null

echo "==> Step 4: an orphan service token (parsed without jq, so an error is not hidden)"
"$BAO" token create -type=service -orphan -format=json -policy="kmesh-default-dataplane-proxies" >"$work/token.json"
token=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["auth"]["client_token"])' "$work/token.json")

cat >"$work/mesh.yaml" <<YAML
type: Secret
mesh: default
name: token-1
data: $(printf '%s' "$token" | base64 -w0)
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
        address: $VAULT_ADDR
        pki: kmesh-pki-default
        role: dataplane-proxies
        commonName: '{{ tag "kuma.io/service" }}.mesh'
        auth:
          token:
            secret: token-1
YAML
http_ok() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); diag_port=$(free_port); raft_port=$(free_port); kds_port=$(free_port); https_port=$(free_port)
cat >"$work/global.toml" <<TOML
[store]
data_dir = "$work/global"
[raft]
listen = "127.0.0.1:$raft_port"
advertise = "127.0.0.1:$raft_port"
[api]
listen = "127.0.0.1:$api_port"
https_listen = "127.0.0.1:$https_port"
[kds]
listen = "127.0.0.1:$kds_port"
[diagnostics]
listen = "127.0.0.1:$diag_port"
TOML
"$GLOBAL" run --config "$work/global.toml" >"$work/global.log" 2>&1 &
global_pid=$!
for _ in $(seq 1 300); do
    http_ok "http://127.0.0.1:$diag_port/ready" && break
    sleep 0.2
done
http_ok "http://127.0.0.1:$diag_port/ready" || { echo "mosaic-global did not become ready; see $work/global.log" >&2; exit 1; }
export MOSAIC_API="http://127.0.0.1:$api_port"
echo "==> mosaic-global (single replica) at $MOSAIC_API"

echo "==> mosaicctl apply -f $work/mesh.yaml (the global validates the backend by a test issuance)"
"$CTL" apply -f "$work/mesh.yaml"
"$CTL" get meshes
"$CTL" get secrets --mesh default
echo "==> the same API over HTTPS (certificate generated into the data dir; its CA is api-server-ca.pem)"
"$CTL" --api "https://127.0.0.1:$https_port" --ca-cert-file "$work/global/api-server-ca.pem" get meshes
ZONE="$PWD/target/debug/mosaic-zone"
DP="$PWD/target/debug/mosaic-dp"
for z in zone-1 zone-2; do
    "$CTL" generate zone-token --zone "$z" --valid-for 720h >"$work/$z.token"
    z_api=$(free_port); z_diag=$(free_port); z_dp=$(free_port); z_https=$(free_port)
    cat >"$work/$z.toml" <<TOML
zone = "$z"
[store]
data_dir = "$work/$z"
[global]
address = "grpcs://127.0.0.1:$kds_port"
ca_cert = "$work/global/kds-ca.pem"
token_file = "$work/$z.token"
[api]
listen = "127.0.0.1:$z_api"
https_listen = "127.0.0.1:$z_https"
[dp_server]
listen = "127.0.0.1:$z_dp"
[diagnostics]
listen = "127.0.0.1:$z_diag"
TOML
    "$ZONE" run --config "$work/$z.toml" >"$work/$z.log" 2>&1 &
    zone_pids="$zone_pids $!"
    for _ in $(seq 1 300); do
        http_ok "http://127.0.0.1:$z_api/meshes/default" && break
        sleep 0.2
    done
    http_ok "http://127.0.0.1:$z_api/meshes/default" || { echo "$z did not receive the Mesh; see $work/$z.log" >&2; exit 1; }
    echo "==> $z (zone token in $work/$z.token) received the Mesh over KDS; its API at http://127.0.0.1:$z_api:"
    "$CTL" --api "http://127.0.0.1:$z_api" get meshes

    dp="backend-$z"
    echo "==> mosaic-dp for dataplane $dp (service backend) in $z: token from the global, certificate over SDS"
    "$CTL" generate dataplane-token --mesh default --name "$dp" --tag kuma.io/service=backend \
        --tag kuma.io/protocol=http --valid-for 24h >"$work/$dp.token"
    cat >"$work/$dp.yaml" <<YAML
type: Dataplane
mesh: default
name: $dp
networking:
  address: 127.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
YAML
    for _ in $(seq 1 100); do [ -s "$work/$z/dp-server-ca.pem" ] && break; sleep 0.1; done
    "$DP" run --zone "https://127.0.0.1:$z_dp" --ca-cert-file "$work/$z/dp-server-ca.pem" \
        --mesh default --name "$dp" --token-file "$work/$dp.token" --dataplane-file "$work/$dp.yaml" \
        --out-dir "$work/$dp" >"$work/$dp.log" 2>&1 &
    dp_pids="$dp_pids $!"
done

for z in zone-1 zone-2; do
    dp="backend-$z"
    for _ in $(seq 1 300); do [ -s "$work/$dp/cert.pem" ] && [ -s "$work/$dp/ca.pem" ] && break; sleep 0.2; done
    [ -s "$work/$dp/cert.pem" ] || { echo "$dp got no certificate; see $work/$dp.log and $work/$z.log" >&2; exit 1; }
    echo "==> $dp (zone $z): files in $work/$dp"
    find "$work/$dp" -maxdepth 1 -type f -printf '    %M %6s %f\n' | sort -k3
    openssl x509 -in "$work/$dp/cert.pem" -noout -ext subjectAltName -issuer -subject -enddate -serial \
        | sed 's/^/    /'
    openssl verify -CAfile "$work/$dp/ca.pem" -untrusted "$work/$dp/cert.pem" "$work/$dp/cert.pem" \
        | sed 's/^/    /'
done
echo "==> mosaicctl inspect zones (on the global: both zones online, CA health per mesh)"
for _ in $(seq 1 50); do [ "$("$CTL" inspect zones | grep -c 'vault-1: Connected')" -ge 2 ] && break; sleep 0.2; done
"$CTL" inspect zones
echo "==> mosaicctl get dataplanes --mesh default (on the global: what the zones reported)"
for _ in $(seq 1 50); do [ "$("$CTL" get dataplanes --mesh default -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))')" -ge 2 ] && break; sleep 0.2; done
"$CTL" get dataplanes --mesh default
echo
echo "Both zones issued certificates for service backend from the one Vault at $VAULT_ADDR:"
echo "each mosaic-dp keeps cert.pem, key.pem (0600) and ca.pem fresh in $work/backend-zone-N."
echo "Everything stops when this script ends; logs and files stay in $work."
