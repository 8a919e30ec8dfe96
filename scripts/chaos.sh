#!/usr/bin/env bash
# Fault testing of idem: a real three-node cluster, each node in its own network
# namespace, under concurrent clients while nemeses kill, pause, partition and
# skew the clock of nodes; then heal, read every key back, and check the whole
# history for linearizability and the registry's invariants.
#
#   scripts/chaos.sh [--duration 60s] [--nemesis kill,pause,partition,clock|all|none]
#                    [--out DIR] [--seed N] [--secure] [-- more idem-chaos run flags]
#
# --secure runs the nodes with TLS, mutual TLS and a token file made under
# --out/tls by idem-node itself; the clients use the CA and an admin token.
#
# Prints progress while it runs and a report at the end (operations, outcomes,
# faults with the longest time without a successful write after each, verdicts).
# Exit status: 0 every key passed; 1 a violation; 2 the run itself failed.
# Needs root (network namespaces, iptables). Always cleans up after itself.
# The history, per-key verdicts and node logs stay in --out (default
# ./data/chaos/<time>); `idem-chaos check DIR/history.jsonl` re-checks a history.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CTL="$ROOT/scripts/chaos/ctl.sh"
DURATION=60s
NEMESIS=all
OUT=""
SEED=()
SECURE=0
EXTRA=()

die() { echo "chaos.sh: $*" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
    --nemesis) NEMESIS="${2:?--nemesis needs a value}"; shift 2 ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --seed) SEED=(--seed "${2:?--seed needs a value}"); shift 2 ;;
    --secure) SECURE=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

(( EUID == 0 )) || die "needs root for network namespaces and iptables"
command -v ip >/dev/null && command -v iptables >/dev/null || die "needs ip and iptables (iproute2, iptables)"

OUT="${OUT:-$ROOT/data/chaos/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
export CHAOS_DIR="$OUT"

# One run at a time: the bridge, namespaces and addresses are fixed.
mkdir -p "$ROOT/data/chaos"
exec 9>"$ROOT/data/chaos/.lock"
flock -n 9 || die "another chaos run holds the lock"

echo "== building (release)"
(cd "$ROOT" && cargo build --release -p idem-node -p idem-chaos) || die "cargo build failed"
# The binaries just built, wherever cargo puts them (CARGO_TARGET_DIR too).
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export IDEM_NODE_BIN="${IDEM_NODE_BIN:-$TARGET/release/idem-node}"

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  echo "== cleaning up"
  bash "$CTL" teardown || true
  if (( status == 2 )); then
    for log in "$OUT"/node-*.log; do
      [[ -f "$log" ]] && { echo "-- last lines of $log"; tail -n 15 "$log"; }
    done
  fi
  echo "history, verdicts and logs: $OUT"
  exit "$status"
}
CHAOS_PID=""
# A signal to this script alone (a CI timeout) must stop the run too: the run
# is waited for in the background so the trap fires at once.
interrupted() {
  [[ -n "$CHAOS_PID" ]] && kill "$CHAOS_PID" 2>/dev/null
  exit 2
}
trap cleanup EXIT
trap interrupted INT TERM

SECURE_ARGS=()
if (( SECURE )); then
  echo "== making a CA, node certificates and an admin token under $OUT/tls"
  tls="$OUT/tls"
  mkdir -p "$tls"
  node="$IDEM_NODE_BIN"
  "$node" certs --out "$tls" --nodes 3 --host 10.77.0.1,10.77.0.2,10.77.0.3 >/dev/null || die "idem-node certs failed"
  admin="$("$node" token --name chaos --admin --token-out "$tls/admin.token")" || die "idem-node token failed"
  printf '{"tokens":[%s]}\n' "$admin" >"$tls/tokens.json"
  export CHAOS_TLS_DIR="$tls"
  SECURE_ARGS=(--ca "$tls/ca.pem")
  IDEM_TOKEN="$(cat "$tls/admin.token")"
  export IDEM_TOKEN
fi

echo "== starting a three-node cluster in network namespaces (10.77.0.1-3)"
bash "$CTL" teardown
bash "$CTL" setup
for i in 1 2 3; do bash "$CTL" start "$i"; done

echo "== running: $DURATION, nemesis $NEMESIS"
"$TARGET/release/idem-chaos" run \
  --nodes "$(bash "$CTL" nodes)" --ctl "$CTL" --duration "$DURATION" --nemesis "$NEMESIS" \
  --history "$OUT/history.jsonl" --verdicts "$OUT/verdicts.txt" "${SEED[@]}" "${SECURE_ARGS[@]}" "${EXTRA[@]}" &
CHAOS_PID=$!
status=0
wait "$CHAOS_PID" || status=$?
exit "$status"
