#!/usr/bin/env bash
# Schemathesis against a live three-node cluster: every operation of
# openapi.yaml (as a follower serves it at /openapi.yaml) gets generated
# valid and invalid requests, and every answer must pass all of
# schemathesis's checks but use_after_free (why: where it is left out, below):
# no 5xx, statuses, headers, content types and bodies as described, invalid
# input refused, valid input accepted. Settings the command line cannot carry
# (per operation) are in scripts/schemathesis.toml.
#
#   scripts/schemathesis.sh     50 examples per operation, at most 10 minutes (about 1-2 minutes)
#
# Environment: IDEM_BASE_PORT (default 8100; nodes on BASE+1..BASE+3),
# IDEM_DATA (default: a new temporary directory), ST_MAX_EXAMPLES (default 50),
# ST_TIMEOUT (seconds for the whole schemathesis run, default 600),
# ST_VENV (where schemathesis is installed, default
# ~/.cache/idem/schemathesis-VERSION; made with python3 -m venv and pip when missing).
# Exits non-zero on any failure; the cluster is always cleaned up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
die() { echo "${0##*/}: $*" >&2; exit 1; }
say() { printf '%s: %s\n' "${0##*/}" "$*"; }

# Pinned: checks and data generation change between releases.
VERSION=4.32.5
VENV="${ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/idem/schemathesis-$VERSION}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-50}"
TIMEOUT="${ST_TIMEOUT:-600}"
export IDEM_BASE_PORT="${IDEM_BASE_PORT:-8100}"
scratch=""
if [[ -z "${IDEM_DATA:-}" ]]; then
  scratch="$(mktemp -d)"
  export IDEM_DATA="$scratch/cluster"
fi

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
  say "installing schemathesis $VERSION from PyPI into $VENV"
  command -v python3 >/dev/null || die "python3 is required"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION" || die "pip install schemathesis==$VERSION failed"
fi
"$VENV/bin/schemathesis" --version | grep -q "$VERSION" || die "$VENV does not hold schemathesis $VERSION"

# The node built from this tree: openapi.yaml is compiled into it, so a
# binary left from an older tree would serve an older description.
say "building idem-node (release)"
cargo build --release --locked -p idem-node
export IDEM_NODE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/idem-node"

trap 'scripts/cluster.sh clean >/dev/null 2>&1 || true; [[ -z "$scratch" ]] || rm -rf "$scratch"' EXIT
scripts/cluster.sh clean >/dev/null 2>&1 || true
say "starting a three-node cluster on ports $((IDEM_BASE_PORT + 1))-$((IDEM_BASE_PORT + 3)) under $IDEM_DATA"
scripts/cluster.sh start 3

# A follower serves the run, so forwarding to the leader is fuzzed too.
leader="$(curl -fsS "http://127.0.0.1:$((IDEM_BASE_PORT + 1))/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')"
target=1
[[ "$leader" == 1 ]] && target=2
url="http://127.0.0.1:$((IDEM_BASE_PORT + target))"
say "leader is node $leader; testing through node $target ($url)"

# Left out, as they would wreck the cluster under test rather than test it:
# POST /v1/cluster/learners adds whatever node id and address are generated
# (and waits for it to catch up), POST /v1/cluster/voters makes voters of
# generated ids, which can take the cluster's quorum away.
# ST301 (use_after_free) is left out too: it counts a deleted record as
# re-created only by a POST or PUT to a prefix of the DELETE's path, and a
# record is re-created by POST .../{key}/claim, a longer one, so claim,
# delete, claim again, read is reported though the read rightly returns the
# second claim (CI, seed 314642187835709815119148402672730703883: the read
# showed the second claim's token). The only operation it could check is the
# read of a record after DELETE, and that a deleted record reads 404 is
# asserted by tests/tests/api_contract.rs (reads_and_deletes). A
# per-operation `enabled = false` in the config file does not win over
# `--checks all`.
say "schemathesis $VERSION: --checks all but use_after_free, $MAX_EXAMPLES examples per operation, at most ${TIMEOUT}s"
start=$SECONDS
status=0
timeout --signal=INT --kill-after=30 "$TIMEOUT" \
  "$VENV/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml run "$url/openapi.yaml" \
  --checks all \
  --exclude-checks use_after_free \
  --max-examples "$MAX_EXAMPLES" \
  --exclude-path /v1/cluster/learners \
  --exclude-path /v1/cluster/voters \
  --request-timeout 70 \
  --generation-database none \
  || status=$?
say "finished in $((SECONDS - start))s with status $status"
if ((status == 124 || status == 130)); then
  die "the run did not finish within ${TIMEOUT}s"
fi
((status == 0)) || die "schemathesis found failures (above)"
scripts/cluster.sh status
