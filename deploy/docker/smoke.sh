#!/usr/bin/env bash
# Try the container deployment end to end: build the image, start compose.yml,
# claim and complete through one node, read through another, kill the leader's
# container and write through the survivors, restart it, stop every container
# with SIGTERM (each must exit 0) and start them again with every record kept.
# Always removes its containers and volumes. Needs docker and docker-compose.
#   deploy/docker/smoke.sh [--no-build]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compose() { docker-compose -p idem-smoke -f "$HERE/compose.yml" "$@"; }
url() { echo "http://127.0.0.1:700$1"; }
step() { printf '== %s\n' "$*"; }
fail() { echo "smoke.sh: $*" >&2; compose logs --tail 20 >&2 || true; exit 1; }

[[ "${1:-}" == --no-build ]] || "$HERE/build.sh"
trap 'compose down -v >/dev/null 2>&1 || true' EXIT

ready() {
  for i in 1 2 3; do
    for _ in $(seq 120); do
      [[ "$(curl -s -o /dev/null -w '%{http_code}' "$(url "$i")/readyz")" == 200 ]] && continue 2
      sleep 0.5
    done
    fail "node $i not ready within 60 s"
  done
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

step "starting three containers"
compose up -d
ready

step "claim through node 2, complete, read through node 3"
[[ "$(status -X POST "$(url 2)/v1/ns/smoke/keys/order-1/claim" -d '{}')" == 201 ]] || fail "claim"
[[ "$(status -X POST "$(url 2)/v1/ns/smoke/keys/order-1/complete" -d '{"token":0}')" == 409 ]] || fail "a wrong token is fenced"
token="$(curl -s "$(url 1)/v1/ns/smoke/keys/order-1" | sed -n 's/.*"token":\([0-9]*\).*/\1/p')"
[[ "$(status -X POST "$(url 2)/v1/ns/smoke/keys/order-1/complete" -d "{\"token\":$token,\"result\":{\"ok\":true}}")" == 200 ]] ||
  fail "complete"
[[ "$(status "$(url 3)/v1/ns/smoke/keys/order-1")" == 200 ]] || fail "read through node 3"

leader="$(curl -s "$(url 1)/v1/cluster" | sed -n 's/.*"leader_id":\([0-9]*\).*/\1/p')"
[[ -n "$leader" ]] || fail "no leader"
step "docker kill node$leader (the leader); write through the survivors"
compose kill node"$leader"
survivor=$((leader % 3 + 1))
for attempt in $(seq 60); do
  code="$(status -X POST "$(url "$survivor")/v1/ns/smoke/keys/order-2/claim" -d '{"claim_id":"c2"}')"
  [[ "$code" == 201 ]] && break
  ((attempt < 60)) || fail "no write through node $survivor after the leader died ($code)"
  sleep 0.5
done
compose start node"$leader"
ready

step "SIGTERM every container; each must exit 0; start again with the data"
compose stop
for i in 1 2 3; do
  code="$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q node$i)")"
  [[ "$code" == 0 ]] || fail "node$i exited $code on SIGTERM"
done
compose start
ready
for key in order-1 order-2; do
  [[ "$(status "$(url "$leader")/v1/ns/smoke/keys/$key")" == 200 ]] || fail "$key lost across restarts"
done
step "ok"
