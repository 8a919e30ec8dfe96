#!/usr/bin/env bash
# Scale of state (issue 8, point 5), measured on a fresh 3-node release cluster:
#
#   scripts/scale.sh [--records 10000000] [--catchup 1000000] [--keep]
#
# 1. fills --catchup records (idem-fill, /v1/batch against the leader);
# 2. times a snapshot catch-up: a follower is removed from the voters, stopped,
#    its data dir wiped, started empty and added back as a learner; the time is
#    from that add until its applied index reaches the leader's at the add,
#    and the node must have installed a snapshot (idem_snapshots_total);
#    it is then made a voter again;
# 3. fills up to --records and reports each node's RSS (VmRSS, and VmHWM the
#    peak) and disk (du), in total and per record.
#
# Environment: IDEM_BASE_PORT (default 7700), IDEM_DATA (default: a temp dir,
# removed on exit unless --keep), CARGO_TARGET_DIR (where the release binaries
# are, built when missing), and any IDEM_* node flag. For the catch-up the
# leader must have a snapshot and have purged the log behind it, or a wiped
# node catches up from the log: so the cluster first runs with a snapshot
# every SCALE_SNAPSHOT_THRESHOLD entries (default 100; a full batch is one
# entry, so about 100,000 records) and 10 entries kept while it fills, and is
# restarted with the node's settings for the catch-up and the rest.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECORDS=10000000
CATCHUP=1000000
KEEP=0
while (($#)); do
  case "$1" in
    --records) RECORDS="${2:?--records needs a number}"; shift 2 ;;
    --catchup) CATCHUP="${2:?--catchup needs a number}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$RECORDS" =~ ^[0-9]+$ && "$CATCHUP" =~ ^[0-9]+$ ]] || die "--records and --catchup take numbers"
((CATCHUP <= RECORDS)) || die "--catchup ($CATCHUP) must not exceed --records ($RECORDS)"
command -v curl >/dev/null || die "curl is required"

export IDEM_BASE_PORT="${IDEM_BASE_PORT:-7700}"
CATCHUP_THRESHOLD="${SCALE_SNAPSHOT_THRESHOLD:-100}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export IDEM_NODE_BIN="${IDEM_NODE_BIN:-$TARGET/release/idem-node}"
FILL="$TARGET/release/idem-fill"
if [[ -z "${IDEM_DATA:-}" ]]; then
  IDEM_DATA="$(mktemp -d "${TMPDIR:-/tmp}/idem-scale.XXXXXX")"
fi
export IDEM_DATA
CLUSTER="$ROOT/scripts/cluster.sh"

cleanup() {
  local rc=$?
  ((rc == 0)) || echo "scale: FAILED (exit $rc; the last lines above say where)" >&2
  if ((KEEP)); then
    # `cluster.sh clean` would remove the data dir with the nodes' logs.
    "$CLUSTER" stop >/dev/null 2>&1 || for i in 1 2 3; do "$CLUSTER" kill "$i" >/dev/null 2>&1 || true; done
    echo "scale: logs and data kept in $IDEM_DATA" >&2
  else
    "$CLUSTER" clean >/dev/null 2>&1 || true
    rm -rf "$IDEM_DATA"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "scale: $*" >&2; }

if [[ ! -x "$IDEM_NODE_BIN" || ! -x "$FILL" ]]; then
  say "building release binaries..."
  (cd "$ROOT" && cargo build --release -p idem-node -p idem-bench >&2) || die "cargo build failed"
fi

url_of() { echo "http://127.0.0.1:$((IDEM_BASE_PORT + $1))"; }
json_field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
status_of() { curl -fsS --max-time 5 "$(url_of "$1")/v1/cluster"; }
applied_of() { status_of "$1" 2>/dev/null | json_field applied_index || true; }
pid_of() { live_pid "$IDEM_DATA/node-$1.pid"; }
# The value of a Prometheus sample (first line starting with $2) on node $1, 0 if absent.
# awk reads to the end: leaving early makes curl fail writing the rest of the
# page (exit 23), and with pipefail that ends the script.
metric_of() {
  curl -fsS --max-time 5 "$(url_of "$1")/metrics" \
    | awk -v m="$2" '!found && index($0, m) == 1 { v = $NF; found = 1 } END { print found ? v : 0 }'
}

# The leader as any node knows it: not node 1's view alone, since node 1 may
# be the follower wiped for the catch-up, which knows no leader until added.
leader() {
  local l i
  for _ in $(seq 100); do
    for i in 1 2 3; do
      l="$(status_of "$i" 2>/dev/null | json_field leader_id || true)"
      [[ "$l" =~ ^[0-9]+$ ]] && { echo "$l"; return; }
    done
    sleep 0.2
  done
  die "no leader"
}

# Wait until every node has applied what the leader has applied.
wait_applied() {
  local l target i a deadline=$((SECONDS + 600))
  l="$(leader)"
  target="$(applied_of "$l")"
  for i in 1 2 3; do
    until a="$(applied_of "$i")"; [[ "$a" =~ ^[0-9]+$ ]] && ((a >= target)); do
      ((SECONDS < deadline)) || die "node $i stuck at applied index ${a:-?} below $target"
      sleep 0.5
    done
  done
}

fill() {
  local from="$1" count="$2"
  ((count > 0)) || return 0
  say "filling $count records (from record $from) into the leader, node $(leader)"
  "$FILL" --endpoint "$(url_of "$(leader)")" --start "$from" --records "$count" || die "fill failed"
  wait_applied
}

kib_of() { awk -v f="$2" '$1 == f":" { print $2 }' "/proc/$1/status"; }

report() {
  local n="$1" i pid rss hwm
  say "state at $n records"
  printf '%-5s %-10s %-12s %-12s %-10s %-10s %-10s %-10s %s\n' node pid "RSS MiB" "peak MiB" "B/record" disk db raft-log snapshots
  for i in 1 2 3; do
    pid="$(pid_of "$i")" || die "node $i is down"
    rss="$(kib_of "$pid" VmRSS)"
    hwm="$(kib_of "$pid" VmHWM)"
    printf '%-5s %-10s %-12s %-12s %-10s %-10s %-10s %-10s %s\n' "$i" "$pid" "$((rss / 1024))" "$((hwm / 1024))" \
      "$((rss * 1024 / (n > 0 ? n : 1)))" "$(du -sh "$IDEM_DATA/node-$i" | cut -f1)" \
      "$(du -sh "$IDEM_DATA/node-$i/db" | cut -f1)" "$(du -sh "$IDEM_DATA/node-$i/raft-log" | cut -f1)" \
      "$(du -sh "$IDEM_DATA/node-$i/snapshots" | cut -f1)"
  done
}

# Start node $1 with no data and no --initial-cluster: it waits to be added.
start_empty() {
  local i="$1"
  mkdir -p "$IDEM_DATA/node-$i"
  local addr="127.0.0.1:$((IDEM_BASE_PORT + i))"
  env IDEM_ID="$i" IDEM_LISTEN="$addr" \
    IDEM_ADVERTISE="$addr" IDEM_DATA_DIR="$IDEM_DATA/node-$i" nohup "$IDEM_NODE_BIN" >>"$IDEM_DATA/node-$i.log" 2>&1 </dev/null &
  echo $! >"$IDEM_DATA/node-$i.pid"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$(url_of "$i")/healthz" 2>/dev/null && return 0
    pid_of "$i" >/dev/null || die "node $i exited; see $IDEM_DATA/node-$i.log"
    sleep 0.1
  done
  die "node $i not serving"
}

post() { curl -fsS --max-time 600 -H 'content-type: application/json' -d "$2" "$(url_of "$(leader)")$1" >/dev/null; }

catchup() {
  local l f target pid start a installed snap install_s
  l="$(leader)"
  f=$((l % 3 + 1))
  snap="$(metric_of "$l" idem_raft_snapshot_index)"
  ((snap > 0)) || die "the leader has built no snapshot; lower SCALE_SNAPSHOT_THRESHOLD"
  say "catch-up: leader $l (snapshot at index $snap); wiping follower $f"
  post /v1/cluster/voters "{\"ids\":[$l,$((6 - l - f))]}" || die "removing node $f from the voters failed"
  # A snapshot that covers the change: one from before it names node $f a
  # voter, and the wiped node, installing it, would campaign (raising the
  # term, deposing the leader) until the log after it reached it.
  curl -fsS --max-time 600 -o /dev/null "$(url_of "$l")/v1/admin/snapshot" ||
    die "taking a snapshot after the membership change failed"
  pid="$(pid_of "$f")" || die "node $f is down"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -rf "${IDEM_DATA:?}/node-$f"
  start_empty "$f"
  target="$(applied_of "$l")"
  say "catch-up: node $f started empty; adding it as a learner (leader applied index $target)"
  start="$(date +%s%N)"
  post /v1/cluster/learners "{\"id\":$f,\"addr\":\"127.0.0.1:$((IDEM_BASE_PORT + f))\"}" &
  local adding=$!
  local deadline=$((SECONDS + 300)) last=0
  until a="$(applied_of "$f")"; [[ "$a" =~ ^[0-9]+$ ]] && ((a >= target)); do
    ((SECONDS < deadline)) || die "node $f did not catch up within 300s (applied ${a:-?} of $target)"
    if ((SECONDS != last)); then last=$SECONDS; say "catch-up: node $f applied ${a:-none} of $target"; fi
    sleep 0.05
  done
  local ms=$((($(date +%s%N) - start) / 1000000))
  wait "$adding" || die "adding node $f as a learner failed"
  installed="$(metric_of "$f" 'idem_snapshots_total{kind="installed"}')"
  ((installed >= 1)) || die "node $f caught up without installing a snapshot: not a snapshot catch-up"
  post /v1/cluster/voters '{"ids":[1,2,3]}' || die "making node $f a voter again failed"
  # The node's own account of the install (loading the received file into
  # the store), so the rest (building, sending, catching up the log) shows.
  install_s="$(metric_of "$f" 'idem_snapshot_duration_seconds_sum{kind="installed"}')"
  printf 'catch-up: node %s, wiped, reached applied index %s (%s records) by snapshot in %d.%03d s' \
    "$f" "$target" "$CATCHUP" $((ms / 1000)) $((ms % 1000))
  printf ' (installing it, by the node'"'"'s idem_snapshot_duration_seconds: %.3f s)\n' "$install_s"
}

say "cluster on ports $((IDEM_BASE_PORT + 1))-$((IDEM_BASE_PORT + 3)), data $IDEM_DATA;" \
  "a snapshot every $CATCHUP_THRESHOLD entries until the catch-up"
IDEM_SNAPSHOT_THRESHOLD="$CATCHUP_THRESHOLD" IDEM_KEEP_LOGS=10 "$CLUSTER" start 3 >&2
fill 0 "$CATCHUP"
# The catch-up runs under the node's own settings: with a snapshot every
# 100 entries, the clock's ticks alone (5 a second) made the leader build a
# new one every 20 s, sooner than a million-record install finished, so the
# follower chased snapshots. The snapshot and the purged log stay.
say "restarting the cluster with the node's own snapshot settings"
"$CLUSTER" stop >&2
"$CLUSTER" start 3 >&2
catchup
wait_applied
fill "$CATCHUP" "$((RECORDS - CATCHUP))"
report "$RECORDS"
