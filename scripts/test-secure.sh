#!/usr/bin/env bash
# The integration suite against secure clusters: every node of every test
# cluster runs with TLS, mutual TLS between nodes and a token file, and every
# client (the harness, idem-client, the CLI, the axum layer) uses the CA and
# an admin token from IDEM_CA and IDEM_TOKEN.
#
#   scripts/test-secure.sh [cargo test args...]     e.g. --test api_contract
#
# Builds the workspace (debug), makes the material with idem-node itself,
# runs `cargo test -p idem-tests`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
echo "== building (debug)" >&2
cargo build --workspace --locked -q
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
node=target/debug/idem-node
"$node" certs --out "$dir" --nodes 5 >/dev/null
admin="$("$node" token --name admin --admin --token-out "$dir/admin.token")"
printf '{"tokens":[%s]}\n' "$admin" >"$dir/tokens.json"
echo "== cargo test -p idem-tests against secure clusters (material in $dir)" >&2
IDEM_TEST_TLS_DIR="$dir" IDEM_CA="$dir/ca.pem" IDEM_TOKEN="$(cat "$dir/admin.token")" \
  cargo test -p idem-tests --locked "$@"
