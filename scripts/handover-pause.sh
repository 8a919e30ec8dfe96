#!/usr/bin/env bash
# Measure what a client sees when the leader of a local cluster gets SIGTERM:
# a client (idem-traffic) claims and completes in a loop through the two other
# nodes, the leader is stopped, and the client's longest pause between two
# successful writes is printed, once per round.
#   scripts/handover-pause.sh [ROUNDS]      (default 5)
# Environment as scripts/cluster.sh (IDEM_NODE_BIN, IDEM_BASE_PORT, IDEM_DATA);
# IDEM_TRAFFIC_BIN, the client (default: built into the target directory).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ROUNDS="${1:-5}"
BASE_PORT="${IDEM_BASE_PORT:-7000}"
export IDEM_DATA="${IDEM_DATA:-$(mktemp -d)/cluster}"
TRAFFIC="${IDEM_TRAFFIC_BIN:-}"
if [[ -z "$TRAFFIC" ]]; then
  (cd "$ROOT" && cargo build -q -p idem-tests --bin idem-traffic)
  TRAFFIC="${CARGO_TARGET_DIR:-$ROOT/target}/debug/idem-traffic"
fi
cluster() { "$HERE/cluster.sh" "$@"; }
url() { echo "http://127.0.0.1:$((BASE_PORT + $1))"; }
trap 'cluster stop >/dev/null 2>&1 || true; echo "logs and data kept in $IDEM_DATA"' EXIT

cluster start 3 >/dev/null
for round in $(seq "$ROUNDS"); do
  # A leader refuses votes for a lease (2 x the election timeout) after its
  # election; let the newest leader settle as a rolling restart would.
  sleep 2
  leader="$(curl -s "$(url 1)/v1/cluster" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')"
  others=()
  for i in 1 2 3; do ((i == leader)) || others+=("$(url "$i")"); done
  records="$IDEM_DATA/round-$round"
  "$TRAFFIC" write --records "$records" --endpoints "${others[0]},${others[1]}" --prefix "r$round" >"$records.summary" &
  client=$!
  sleep 2
  kill -TERM "$(cat "$IDEM_DATA/node-$leader.pid")"
  while kill -0 "$(cat "$IDEM_DATA/node-$leader.pid")" 2>/dev/null; do sleep 0.05; done
  sleep 3
  kill -TERM "$client"
  wait "$client" || true
  echo "round $round: SIGTERM to leader $leader: $(cat "$records.summary")"
  cluster start-node "$leader" >/dev/null
done
