#!/usr/bin/env bash
# Throughput and latency of a local three-node cluster under concurrent claims.
#
#   scripts/bench.sh [--clients 64] [--duration 10s] [--workload claim|claim-complete] [--leader-only]
#
# Builds release binaries, starts a fresh cluster (IDEM_BASE_PORT default 7400,
# data in a temp dir), runs idem-bench, prints its summary line, cleans up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS=64 DURATION=10s WORKLOAD=claim LEADER_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clients) CLIENTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --workload) WORKLOAD="$2"; shift 2 ;;
    --leader-only) LEADER_ONLY=1; shift ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
export IDEM_BASE_PORT="${IDEM_BASE_PORT:-7400}"
IDEM_DATA="$(mktemp -d)"; export IDEM_DATA
trap '"$ROOT/scripts/cluster.sh" clean >/dev/null 2>&1 || true' EXIT

echo "== building release binaries" >&2
(cd "$ROOT" && cargo build --release -q -p idem-node -p idem-bench)
echo "== starting a 3-node cluster" >&2
"$ROOT/scripts/cluster.sh" start 3 >&2
endpoints="http://127.0.0.1:$((IDEM_BASE_PORT + 1)),http://127.0.0.1:$((IDEM_BASE_PORT + 2)),http://127.0.0.1:$((IDEM_BASE_PORT + 3))"
if [[ "$LEADER_ONLY" == 1 ]]; then
  leader="$(curl -fsS "http://127.0.0.1:$((IDEM_BASE_PORT + 1))/v1/cluster" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')"
  endpoints="http://127.0.0.1:$((IDEM_BASE_PORT + leader))"
fi
echo "== running $CLIENTS clients for $DURATION ($WORKLOAD) against $endpoints" >&2
"$ROOT/target/release/idem-bench" --endpoints "$endpoints" --clients "$CLIENTS" --duration "$DURATION" --workload "$WORKLOAD"
fsyncs="$(curl -fsS "http://127.0.0.1:$((IDEM_BASE_PORT + 1))/metrics" | sed -n 's/^idem_log_fsyncs_total \(.*\)/\1/p')"
echo "node 1 log fsyncs during the run: ${fsyncs:-unknown}"
