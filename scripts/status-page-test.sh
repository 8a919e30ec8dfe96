#!/usr/bin/env bash
# The status page (GET /) in a real headless browser, Debian's chromium:
# start a three-node cluster (scripts/cluster.sh), send some claims, load the
# page from a FOLLOWER and check that the rendered DOM names three members
# with the right leader and the claims' outcomes; SIGKILL the leader, wait for
# a new one, load the page again and check it names the new leader and shows
# the killed node as unreachable.
#
#   scripts/status-page-test.sh [--screenshot FILE]
#
# --screenshot FILE: also save a 1200x900 PNG of the page after the traffic
# (how docs/status-page.png is made).
# Environment: IDEM_BASE_PORT (default 8200), IDEM_DATA (default: a new
# temporary directory), IDEM_NODE_BIN (default: built, release, into
# ${CARGO_TARGET_DIR:-target}), CHROMIUM (default: chromium, installed with
# apt-get when missing). Exits non-zero with one line saying what the page
# showed when a check fails.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SCREENSHOT=""
case "${1:-}" in
  --screenshot) SCREENSHOT="${2:?--screenshot needs a file}" ;;
  "") ;;
  *) echo "usage: status-page-test.sh [--screenshot FILE]" >&2; exit 2 ;;
esac
export IDEM_BASE_PORT="${IDEM_BASE_PORT:-8200}"
work="$(mktemp -d)"
export IDEM_DATA="${IDEM_DATA:-$work/cluster}"
CHROMIUM="${CHROMIUM:-chromium}"
started=$SECONDS

say() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() { echo "status-page-test: FAILED: $*" >&2; exit 1; }
cluster() { "$HERE/cluster.sh" "$@"; }
url() { echo "http://127.0.0.1:$((IDEM_BASE_PORT + $1))"; }

if ! command -v "$CHROMIUM" >/dev/null; then
  say "installing chromium (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  command -v "$CHROMIUM" >/dev/null || fail "no $CHROMIUM after apt-get install chromium"
fi
if [[ -z "${IDEM_NODE_BIN:-}" ]]; then
  # Always through cargo: cluster.sh builds only a missing binary, and a
  # stale one would serve an old page.
  say "building idem-node (release)"
  (cd "$ROOT" && cargo build -q --release --locked -p idem-node)
  export IDEM_NODE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/idem-node"
fi

finish() {
  local rc=$?
  if ((rc == 0)); then
    cluster clean >/dev/null 2>&1 || true
    rm -rf "$work"
  else
    cluster stop >/dev/null 2>&1 || cluster clean >/dev/null 2>&1 || true
    echo "status-page-test: node logs kept in $IDEM_DATA" >&2
  fi
}
trap finish EXIT
say "starting a cluster on ports $((IDEM_BASE_PORT + 1))-$((IDEM_BASE_PORT + 3)) ($IDEM_DATA)"
cluster start 3 >/dev/null

# The leader that node $1 knows of, or nothing.
leader_seen_by() {
  curl -fsS --max-time 2 "$(url "$1")/v1/cluster" 2>/dev/null | sed -n 's/.*"leader_id":\([0-9][0-9]*\).*/\1/p'
}

# The leader every node in "$@" names, other than a killed node $DOWN,
# waiting up to 30 s for them to agree.
agreed_leader() {
  local deadline=$((SECONDS + 30)) i l seen
  while ((SECONDS < deadline)); do
    seen=""
    for i in "$@"; do
      l="$(leader_seen_by "$i")"
      if [[ -z "$l" || "$l" == "${DOWN:-}" || (-n "$seen" && "$l" != "$seen") ]]; then seen=""; break; fi
      seen="$l"
    done
    if [[ -n "$seen" ]]; then echo "$seen"; return; fi
    sleep 0.2
  done
  fail "nodes $* did not agree on a leader${DOWN:+ other than node $DOWN} within 30 s"
}

# The page of node $1 as the browser renders it, after a few seconds of its
# own polling (virtual time: the budget pauses while a fetch is pending).
render() {
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
    --virtual-time-budget=3000 --dump-dom "$(url "$1")/" 2>/dev/null
}

# Wait until node $1's rendered page passes check $2 (a function reading the
# DOM on stdin; $3 says what it wants); after 20 s fail, naming what the page
# showed, with the DOM kept in $work.
page_until() {
  local node="$1" check="$2" what="$3" deadline=$((SECONDS + 20)) dom
  while :; do
    dom="$(render "$node")"
    if "$check" <<<"$dom"; then return; fi
    if ((SECONDS >= deadline)); then
      printf '%s\n' "$dom" >"$work/page-$node.html"
      local shown
      shown="$(grep -oE 'id="(leader|abandoned)"[^<]*|data-member="[0-9]+" data-role="[a-z]+"|data-loaded="[a-z]+"' \
        <<<"$dom" | tr '\n' ' ')"
      fail "node $node's page never showed $what; it showed: ${shown:-nothing} (DOM: $work/page-$node.html)"
    fi
    sleep 1
  done
}

members_shown() { grep -oE 'data-member="[0-9]+"' | sort -u | wc -l; }

# Three members, $LEADER named as the leader and shown in the leader's role,
# every other member a follower, or $DOWN unreachable.
three_members_and_the_leader() {
  local dom; dom="$(cat)"
  grep -q 'data-loaded="true"' <<<"$dom" || return 1
  [[ "$(members_shown <<<"$dom")" == 3 ]] || return 1
  grep -q "id=\"leader\" data-leader=\"$LEADER\"" <<<"$dom" || return 1
  grep -q "data-member=\"$LEADER\" data-role=\"leader\"" <<<"$dom" || return 1
  local i want
  for i in 1 2 3; do
    [[ "$i" == "$LEADER" ]] && continue
    want=follower
    [[ "$i" == "${DOWN:-}" ]] && want=unreachable
    grep -q "data-member=\"$i\" data-role=\"$want\"" <<<"$dom" || return 1
  done
}

# The rate the page shows for outcome $1.
shown_rate() { sed -n "s/.*data-outcome=\"$1\"><td>[^<]*<\/td><td class=\"num\">\([0-9.]*\)<.*/\1/p"; }

# Non-zero rates for the outcomes of the traffic below (within the node's
# 10 s window, so checked right after it).
claim_rates_shown() {
  local dom outcome rate; dom="$(cat)"
  for outcome in acquired replayed in_progress fingerprint_mismatch fenced; do
    rate="$(shown_rate "$outcome" <<<"$dom")"
    [[ -n "$rate" && "$rate" != 0.0 ]] || return 1
  done
}

# The claim left behind by the traffic below, once its lease has run out and
# the node has counted it (a pass every 5 s).
one_abandoned_claim() { grep -q 'id="abandoned">1<'; }

LEADER="$(agreed_leader 1 2 3)"
FOLLOWER=$((LEADER % 3 + 1))
say "leader is node $LEADER; the page is loaded from follower $FOLLOWER"

# Claims through node $FOLLOWER, keys prefixed $1: acquired, completed,
# replayed, a fingerprint mismatch, a held key (409), a fenced completion and
# a claim left behind with a 100 ms lease.
traffic() {
  local p="$1" i t
  claim() { curl -sS -o /dev/null -w '%{http_code}' -X POST "$(url "$FOLLOWER")/v1/ns/demo/keys/$p$1/claim" -d "$2"; }
  post() { curl -sS -o /dev/null -w '%{http_code}' -X POST "$(url "$FOLLOWER")/v1/ns/demo/keys/$p$1/$2" -d "$3"; }
  for i in 1 2 3 4 5; do
    t="$(curl -sS -X POST "$(url "$FOLLOWER")/v1/ns/demo/keys/${p}order-$i/claim" -d '{"fingerprint":"f"}' \
      | sed -n 's/.*"token":\([0-9]*\).*/\1/p')"
    [[ -n "$t" ]] || fail "claiming ${p}order-$i through node $FOLLOWER failed"
    [[ "$(post "order-$i" complete "{\"token\":$t,\"result\":{\"charge\":\"ch_$i\"}}")" == 200 ]] \
      || fail "completing ${p}order-$i was not 200"
    [[ "$(claim "order-$i" '{"fingerprint":"f"}')" == 200 ]] || fail "a replay of ${p}order-$i was not 200"
  done
  [[ "$(claim order-1 '{"fingerprint":"other"}')" == 422 ]] || fail "a fingerprint mismatch was not 422"
  [[ "$(claim held '{}')" == 201 && "$(claim held '{}')" == 409 ]] || fail "a held key was not 201, then 409"
  [[ "$(post order-2 complete '{"token":1}')" == 409 ]] || fail "a completion with a stale token was not 409"
  [[ "$(claim left-behind '{"lease_ms":100}')" == 201 ]] || fail "the claim left behind was not 201"
}

say "traffic through node $FOLLOWER: claims acquired, replayed, held, refused, fenced, one left behind"
traffic a-
page_until "$FOLLOWER" claim_rates_shown "a non-zero rate for every outcome sent"
say "ok: node $FOLLOWER's page shows every outcome's rate"
page_until "$FOLLOWER" three_members_and_the_leader "3 members with node $LEADER leading"
say "ok: it shows 3 members and leader $LEADER"
page_until "$FOLLOWER" one_abandoned_claim "1 abandoned claim"
say "ok: it shows the abandoned claim"
if [[ -n "$SCREENSHOT" ]]; then
  # Fresh traffic, so the rates are not decaying; the first claim left behind stays abandoned.
  traffic b-
  sleep 2
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" --hide-scrollbars \
    --virtual-time-budget=3000 --window-size=1200,900 --screenshot="$SCREENSHOT" "$(url "$FOLLOWER")/" 2>/dev/null
  say "screenshot saved to $SCREENSHOT"
fi

say "killing the leader, node $LEADER"
cluster kill "$LEADER"
DOWN="$LEADER"
survivors=()
for i in 1 2 3; do [[ "$i" == "$DOWN" ]] || survivors+=("$i"); done
LEADER="$(agreed_leader "${survivors[@]}")"
for i in "${survivors[@]}"; do [[ "$i" == "$LEADER" ]] || FOLLOWER="$i"; done
say "new leader is node $LEADER; loading the page from follower $FOLLOWER"
page_until "$FOLLOWER" three_members_and_the_leader "3 members, node $LEADER leading and node $DOWN unreachable"
say "ok: node $FOLLOWER's page shows leader $LEADER, and node $DOWN unreachable"
say "status page test passed"
