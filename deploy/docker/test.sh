#!/usr/bin/env bash
# The container tests: the compose cluster of compose.yml under the everyday
# events an operator meets. Each test starts from fresh volumes.
#
#   smoke      claim, complete, read through another node; kill the leader's
#              container and write through the survivors; SIGTERM every
#              container (each must exit 0) and start them again, data kept
#   partition  `docker network disconnect` the leader while a client claims
#              through the other two: they elect and serve, the isolated node
#              acknowledges nothing, and once reconnected it holds every
#              acknowledged record with its token
#   rolling    `docker stop` (SIGTERM) and start each container in turn, each
#              ready before the next, while a client claims and completes:
#              no write fails beyond the client's retries, none is lost
#   upgrade    (with --upgrade-from COMMIT) the same roll from an image built
#              at COMMIT to this tree's, data kept; then a node must refuse,
#              naming the cause, a log format it does not know
#
# Usage: deploy/docker/test.sh [--no-build] [--upgrade-from COMMIT] [TEST...]
#   (default: every test; upgrade only with --upgrade-from). Environment:
#   IDEM_DOCKER_NO_BUILD=1 is --no-build, IDEM_UPGRADE_FROM is --upgrade-from,
#   CARGO_TARGET_DIR is shared with build.sh and the client's build.
# Needs docker, docker-compose and curl; the partition test enters the
# isolated container's network namespace with nsenter (root). Removes its
# containers, network, volumes and the old commit's worktree on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROJECT=idemtest
NETWORK="${PROJECT}_idem"
IMAGE=idem-node:latest
NO_BUILD="${IDEM_DOCKER_NO_BUILD:-}"
UPGRADE_FROM="${IDEM_UPGRADE_FROM:-}"
TESTS=()
while (($#)); do
  case "$1" in
    --no-build) NO_BUILD=1 ;;
    --upgrade-from) UPGRADE_FROM="${2:?--upgrade-from needs a commit}"; shift ;;
    smoke | partition | rolling | upgrade) TESTS+=("$1") ;;
    *) echo "test.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
if ((${#TESTS[@]} == 0)); then
  TESTS=(smoke partition rolling)
  [[ -z "$UPGRADE_FROM" ]] || TESTS+=(upgrade)
fi

STARTED=$SECONDS
step() { printf '== [%3ds %(%T)T] %s\n' $((SECONDS - STARTED)) -1 "$*"; }
fail() {
  echo "test.sh: FAILED: $*" >&2
  compose logs --tail 30 >&2 2>/dev/null || true
  exit 1
}
compose() { IDEM_IMAGE="$IMAGE" docker-compose -p "$PROJECT" -f "$HERE/compose.yml" "$@"; }
cid() { compose ps -q "node$1"; }
url() { echo "http://127.0.0.1:700$1"; }
now_ms() { date +%s%3N; }
code_of() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@" || true; }
# The first numeric field $1 of the JSON on stdin.
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
leader_seen_by() { curl -s -m 2 "$(url "$1")/v1/cluster" | field leader_id || true; }

command -v docker >/dev/null || { echo "test.sh: docker is not installed" >&2; exit 1; }
command -v docker-compose >/dev/null || { echo "test.sh: docker-compose is not installed" >&2; exit 1; }
if ! why="$(docker info 2>&1 >/dev/null)"; then
  echo "test.sh: no Docker daemon answers (docker info: ${why##*$'\n'})" >&2
  exit 1
fi

WORK="$(mktemp -d)"
TRAFFIC_PID=""
OLD_TREE=""
cleanup() {
  [[ -z "$TRAFFIC_PID" ]] || kill "$TRAFFIC_PID" 2>/dev/null || true
  compose down -v >/dev/null 2>&1 || true
  [[ -z "$OLD_TREE" ]] || git -C "$ROOT" worktree remove --force "$OLD_TREE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "$NO_BUILD" ]]; then
  step "building the image (deploy/docker/build.sh)"
  "$HERE/build.sh" "$IMAGE"
fi
step "building the client (idem-traffic)"
(cd "$ROOT" && cargo build -q -p idem-tests --bin idem-traffic)
TRAFFIC="${CARGO_TARGET_DIR:-$ROOT/target}/debug/idem-traffic"

# Wait until each node given answers /readyz with 200.
ready() {
  local i
  for i in "$@"; do
    for _ in $(seq 240); do
      [[ "$(code_of "$(url "$i")/readyz")" == 200 ]] && continue 2
      sleep 0.25
    done
    fail "node $i not ready within 60 s"
  done
}

fresh_cluster() {
  compose down -v >/dev/null 2>&1 || true
  compose up -d >/dev/null 2>&1 || fail "docker-compose up"
  ready 1 2 3
}

# Start the client writing through endpoints $2 into records file $1, keys prefixed $3.
traffic_start() {
  "$TRAFFIC" write --records "$1" --endpoints "$2" --prefix "$3" >"$1.summary" 2>"$1.log" &
  TRAFFIC_PID=$!
}

# Stop the client; fail unless every write succeeded. Prints its summary.
traffic_stop() {
  local rc=0
  kill -TERM "$TRAFFIC_PID"
  wait "$TRAFFIC_PID" || rc=$?
  TRAFFIC_PID=""
  step "client: $(cat "$1.summary")"
  grep -h "a pause of" "$1.log" | sed 's/^/   /' || true
  ((rc == 0)) || fail "the client saw writes fail after its retries: $(tail -5 "$1.log")"
}

# Every record of file $1 is on every node, with its token and state.
verify_everywhere() {
  local out
  out="$("$TRAFFIC" verify --records "$1" --endpoints "$(url 1),$(url 2),$(url 3)" 2>&1)" ||
    fail "acknowledged records missing or wrong: $out"
  step "verified on every node: $out"
}

# Wait until every node has applied as far as the leader has.
caught_up() {
  local i applied=()
  for _ in $(seq 120); do
    applied=()
    for i in 1 2 3; do applied+=("$(curl -s -m 2 "$(url "$i")/v1/cluster" | field applied_index)"); done
    [[ -n "${applied[0]}" && "${applied[0]}" == "${applied[1]}" && "${applied[1]}" == "${applied[2]}" ]] && return
    sleep 0.5
  done
  fail "the nodes did not converge on one applied index: ${applied[*]}"
}

test_smoke() {
  step "smoke: fresh cluster; claim through node 2, complete, read through node 3"
  fresh_cluster
  local keys="$(url 2)/v1/ns/smoke/keys" token leader survivor code
  [[ "$(code_of -X POST "$keys/order-1/claim" -d '{}')" == 201 ]] || fail "claim"
  [[ "$(code_of -X POST "$keys/order-1/complete" -d '{"token":0}')" == 409 ]] || fail "a wrong token is fenced"
  token="$(curl -s "$(url 1)/v1/ns/smoke/keys/order-1" | field token)"
  [[ "$(code_of -X POST "$keys/order-1/complete" -d "{\"token\":$token,\"result\":{\"ok\":true}}")" == 200 ]] ||
    fail "complete"
  [[ "$(code_of "$(url 3)/v1/ns/smoke/keys/order-1")" == 200 ]] || fail "read through node 3"
  leader="$(leader_seen_by 1)"
  [[ -n "$leader" ]] || fail "no leader"
  step "smoke: docker kill node$leader (the leader); write through the survivors"
  docker kill "$(cid "$leader")" >/dev/null
  survivor=$((leader % 3 + 1))
  for attempt in $(seq 60); do
    code="$(code_of -X POST "$(url "$survivor")/v1/ns/smoke/keys/order-2/claim" -d '{"claim_id":"c2"}')"
    [[ "$code" == 201 ]] && break
    ((attempt < 60)) || fail "no write through node $survivor after the leader died ($code)"
    sleep 0.5
  done
  docker start "$(cid "$leader")" >/dev/null
  ready 1 2 3
  step "smoke: SIGTERM every container; each must exit 0; start again with the data"
  compose stop >/dev/null 2>&1
  for i in 1 2 3; do
    code="$(docker inspect -f '{{.State.ExitCode}}' "$(cid "$i")")"
    [[ "$code" == 0 ]] || fail "node$i exited $code on SIGTERM"
  done
  compose start >/dev/null 2>&1
  ready 1 2 3
  for key in order-1 order-2; do
    [[ "$(code_of "$(url "$leader")/v1/ns/smoke/keys/$key")" == 200 ]] || fail "$key lost across restarts"
  done
}

test_partition() {
  step "partition: fresh cluster"
  fresh_cluster
  local old new others=() records="$WORK/partition" t0 code
  old="$(leader_seen_by 1)"
  [[ -n "$old" ]] || fail "no leader"
  for i in 1 2 3; do ((i == old)) || others+=("$i"); done
  traffic_start "$records" "$(url "${others[0]}"),$(url "${others[1]}")" p
  sleep 3
  step "partition: docker network disconnect node$old (the leader); the client writes through nodes ${others[*]}"
  t0="$(now_ms)"
  docker network disconnect "$NETWORK" "$(cid "$old")"
  for _ in $(seq 300); do
    new="$(leader_seen_by "${others[0]}")"
    [[ -n "$new" && "$new" != "$old" && "$(leader_seen_by "${others[1]}")" == "$new" ]] && break
    sleep 0.1
  done
  [[ -n "$new" && "$new" != "$old" ]] || fail "the majority elected no new leader within 30 s"
  step "partition: node$new leads, $(($(now_ms) - t0)) ms after the disconnect"
  # The isolated node cannot commit: a claim sent to it (from inside its own
  # network namespace, the only way in) must not be acknowledged.
  code="$(nsenter -t "$(docker inspect -f '{{.State.Pid}}' "$(cid "$old")")" -n \
    curl -s -o /dev/null -m 20 -w '%{http_code}' -X POST \
    "http://127.0.0.1:7000/v1/ns/traffic/keys/isolated/claim" -d '{}' || true)"
  [[ "$code" == 503 ]] || fail "the isolated node answered $code to a claim, not 503"
  step "partition: the isolated node answered 503 to a claim"
  step "partition: reconnecting node$old"
  docker network connect --ip "172.28.0.1$old" "$NETWORK" "$(cid "$old")"
  sleep 3
  traffic_stop "$records"
  ready 1 2 3
  caught_up
  verify_everywhere "$records"
  for i in 1 2 3; do
    code="$(code_of "$(url "$i")/v1/ns/traffic/keys/isolated?consistency=stale")"
    [[ "$code" == 404 ]] || fail "node $i has the claim the isolated node never acknowledged ($code)"
  done
  step "partition: ok"
}

# Stop (SIGTERM, as `docker stop` does) and start each node in turn, each ready
# before the next; with $1 set, recreate it on image $1 instead (an upgrade).
# With ROLL_CHECK set, that function is called with each node's number once
# it is back.
roll() {
  local to="${1:-}" code
  for i in 1 2 3; do
    local role=follower
    [[ "$(leader_seen_by "$i")" == "$i" ]] && role=leader
    step "roll: stopping node$i (the $role)"
    docker stop -t 30 "$(cid "$i")" >/dev/null
    code="$(docker inspect -f '{{.State.ExitCode}}' "$(cid "$i")")"
    [[ "$code" == 0 ]] || fail "node$i exited $code on SIGTERM"
    [[ "$role" == follower ]] ||
      step "roll: node$i says: $(docker logs --tail 30 "$(cid "$i")" 2>&1 |
        grep -E 'shutdown requested|leadership|shutting down raft' | cut -c15-140 | tr '\n' ' ')"
    if [[ -n "$to" ]]; then
      IMAGE="$to" compose up -d --no-deps "node$i" >/dev/null 2>&1 || fail "recreating node$i on $to"
    else
      docker start "$(cid "$i")" >/dev/null
    fi
    ready 1 2 3
    step "roll: node$i is back and every node is ready"
    sleep 2
    [[ -z "${ROLL_CHECK:-}" ]] || "$ROLL_CHECK" "$i"
  done
}

test_rolling() {
  step "rolling: fresh cluster"
  fresh_cluster
  local records="$WORK/rolling"
  traffic_start "$records" "$(url 1),$(url 2),$(url 3)" r
  sleep 3
  roll
  traffic_stop "$records"
  caught_up
  verify_everywhere "$records"
  step "rolling: ok"
}

# idem_sweep_walks_records on node $1: empty on a version without it.
sweep_walks() {
  curl -s -m 2 "$(url "$1")/metrics" | awk '$1 == "idem_sweep_walks_records" { print $2 }'
}

# While a node still runs the old version, no new one may have switched expiry
# to walking the records: the switch is a log entry the old version cannot
# decode. Nodes 1..$1 are new; the leader asks every second, and roll waited 2 s.
not_switched_while_old() {
  local i
  ((${1} < 3)) || return 0
  for i in $(seq "$1"); do
    [[ "$(sweep_walks "$i")" == 0 ]] ||
      fail "node$i walks the records (or says nothing) while node3 still runs idem-node:old"
  done
  step "upgrade: $1 of 3 nodes new, node3 still old: none walks the records yet"
}

test_upgrade() {
  if [[ -z "$UPGRADE_FROM" ]]; then
    step "upgrade: skipped (give --upgrade-from COMMIT)"
    return
  fi
  OLD_TREE="$WORK/old-tree"
  step "upgrade: building idem-node:old at $UPGRADE_FROM"
  git -C "$ROOT" worktree add --detach "$OLD_TREE" "$UPGRADE_FROM" >/dev/null 2>&1 ||
    fail "git worktree add of $UPGRADE_FROM"
  # Its own target directory: cargo names a workspace crate's build by
  # package, not by path, so two trees in one directory take each other's
  # builds for fresh whenever the other's files are newer.
  # Seeded with a copy of this tree's static build (mtimes kept), so the
  # dependencies both trees share are not compiled again; the old tree's own
  # crates, checked out just now, are newer than every copied artifact and
  # are rebuilt.
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  if [[ -d "$target/static" && ! -d "$target/upgrade-from/static" ]]; then
    mkdir -p "$target/upgrade-from"
    cp -a "$target/static" "$target/upgrade-from/static"
  fi
  CARGO_TARGET_DIR="$target/upgrade-from" IDEM_SRC="$OLD_TREE" "$HERE/build.sh" idem-node:old
  step "upgrade: fresh cluster on idem-node:old"
  local new_image="$IMAGE" before="$WORK/upgrade-before" after="$WORK/upgrade-after" saved="$WORK/FORMAT" code
  IMAGE=idem-node:old
  fresh_cluster
  traffic_start "$before" "$(url 1),$(url 2),$(url 3)" u1
  sleep 5
  traffic_stop "$before"
  # A claim left in progress: the new version lists it from the old data.
  code="$(code_of -X POST "$(url 1)/v1/ns/upgrade/keys/held/claim" -d '{"lease_ms":3600000}')"
  [[ "$code" == 201 ]] || fail "claiming upgrade/held on idem-node:old answered $code"
  IMAGE="$new_image"
  ROLL_CHECK=not_switched_while_old roll "$new_image"
  for i in 1 2 3; do
    [[ "$(docker inspect -f '{{.Config.Image}}' "$(cid "$i")")" == "$new_image" ]] || fail "node$i is not on $new_image"
  done
  caught_up
  local i
  for i in 1 2 3; do
    for _ in $(seq 60); do
      [[ "$(sweep_walks "$i")" == 1 ]] && break
      sleep 0.5
    done
    [[ "$(sweep_walks "$i")" == 1 ]] || fail "node$i did not switch to walking the records after the upgrade"
  done
  step "upgrade: every node switched to walking the records once all three were new"
  verify_everywhere "$before"
  local listed
  for i in 1 2 3; do
    listed="$(curl -s -m 10 "$(url "$i")/v1/ns/upgrade/keys?state=in_progress&consistency=stale")"
    [[ "$listed" == *'"key":"held"'* ]] || fail "node$i does not list the claim in progress from before the upgrade: $listed"
  done
  step "upgrade: every node lists the claim left in progress on idem-node:old"
  traffic_start "$after" "$(url 1),$(url 2),$(url 3)" u2
  sleep 3
  traffic_stop "$after"
  caught_up
  verify_everywhere "$after"

  step "upgrade: a node must refuse a log format it does not know"
  docker stop -t 30 "$(cid 3)" >/dev/null
  docker cp "$(cid 3):/data/raft-log/FORMAT" "$saved"
  printf 'idem-raft-log 2\n' >"$WORK/FUTURE"
  docker cp "$WORK/FUTURE" "$(cid 3):/data/raft-log/FORMAT"
  docker start "$(cid 3)" >/dev/null
  code="$(timeout 30 docker wait "$(cid 3)" || true)"
  [[ -n "$code" && "$code" != 0 ]] || fail "node3 started on a log format it does not know"
  # Read the whole log before matching: under pipefail, `docker logs | grep -q`
  # fails when grep exits at the match while docker logs is still writing.
  local said
  said="$(docker logs "$(cid 3)" 2>&1)"
  [[ "$said" == *"refusing to start"* ]] ||
    fail "node3 refused without saying why: $(docker logs --tail 3 "$(cid 3)" 2>&1)"
  step "upgrade: node3 exited $code: $(docker logs --tail 1 "$(cid 3)" 2>&1)"
  docker cp "$saved" "$(cid 3):/data/raft-log/FORMAT"
  docker start "$(cid 3)" >/dev/null
  ready 1 2 3
  caught_up
  verify_everywhere "$before"
  step "upgrade: ok"
}

for t in "${TESTS[@]}"; do
  started=$SECONDS
  "test_$t"
  step "$t took $((SECONDS - started)) s"
done
step "all passed: ${TESTS[*]}"
