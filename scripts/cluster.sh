#!/usr/bin/env bash
# A local idem cluster of real idem-node processes on 127.0.0.1 (see shared/API.md).
#
#   scripts/cluster.sh start [N]      start N nodes (default 3) or resume their data; wait until ready
#   scripts/cluster.sh stop           SIGTERM every node and wait; data kept
#   scripts/cluster.sh kill I         SIGKILL node I
#   scripts/cluster.sh start-node I   start node I again with its data
#   scripts/cluster.sh pause I        SIGSTOP node I
#   scripts/cluster.sh resume I       SIGCONT node I
#   scripts/cluster.sh status         id, pid or down, role, term, applied index per node
#   scripts/cluster.sh clean          stop everything and delete $IDEM_DATA
#
# Environment: IDEM_BASE_PORT (default 7000; node i listens on BASE+i),
# IDEM_DATA (default ./data/cluster; node i keeps $IDEM_DATA/node-i),
# IDEM_NODE_BIN (default: target/release/idem-node, built when missing),
# IDEM_READY_TIMEOUT (seconds, default 30), IDEM_SECURE=1 (on a fresh start:
# TLS, mutual TLS between nodes and tokens, made under $IDEM_DATA; a cluster
# started so stays secure). Every failure exits non-zero with one line.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE_PORT="${IDEM_BASE_PORT:-7000}"
DATA="${IDEM_DATA:-./data/cluster}"
READY_TIMEOUT="${IDEM_READY_TIMEOUT:-30}"

need_curl() { command -v curl >/dev/null || die "curl is required (apt-get install curl)"; }

port_of() { echo $((BASE_PORT + $1)); }
addr_of() { echo "127.0.0.1:$(port_of "$1")"; }
dir_of() { echo "$DATA/node-$1"; }
pid_file() { echo "$DATA/node-$1.pid"; }
size_file() { echo "$DATA/cluster.size"; }

check_id() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] || die "node id expected, got '${1:-}'"
  [[ -f "$(size_file)" ]] || die "no cluster under $DATA (run: start)"
  (( $1 >= 1 && $1 <= $(cat "$(size_file)") )) || die "node $1 is not in the cluster of $(cat "$(size_file)")"
}

pid_of() { local f; f="$(pid_file "$1")"; live_pid "$f"; }

# A secure cluster (IDEM_SECURE=1 at its first start) keeps its CA, node
# certificates and tokens under $DATA, and is spoken to over https.
secure_mark() { echo "$DATA/secure"; }
is_secure() { [[ -f "$(secure_mark)" ]]; }
url_of() { if is_secure; then echo "https://$(addr_of "$1")"; else echo "http://$(addr_of "$1")"; fi; }
# curl that trusts the cluster's CA and, for /v1 calls, sends the admin token.
node_curl() {
  if is_secure; then
    curl --cacert "$DATA/tls/ca.pem" -H "Authorization: Bearer $(cat "$DATA/admin.token")" "$@"
  else
    curl "$@"
  fi
}

# Certificates for nodes 1..N and a token file with an admin token and a
# token for namespace demo, all made by idem-node itself.
make_secure() {
  local n="$1"
  "$BIN" certs --out "$DATA/tls" --nodes "$n" --host 127.0.0.1,localhost >/dev/null || die "making certificates failed"
  local admin demo
  admin="$("$BIN" token --name admin --admin --token-out "$DATA/admin.token")" || die "making a token failed"
  demo="$("$BIN" token --name demo --grant demo=read,write,delete --token-out "$DATA/demo.token")" \
    || die "making a token failed"
  printf '{"tokens":[%s,%s]}\n' "$admin" "$demo" >"$DATA/tokens.json"
  touch "$(secure_mark)"
}

ensure_binary() {
  if [[ ! -x "$BIN" ]]; then
    echo "building idem-node (release)..." >&2
    (cd "$ROOT" && cargo build --release -p idem-node >&2) || die "cargo build failed"
  fi
  [[ -x "$BIN" ]] || die "no idem-node binary at $BIN"
}

start_one() {
  local i="$1" n; n="$(cat "$(size_file)")"
  if pid_of "$i" >/dev/null; then return 0; fi
  mkdir -p "$(dir_of "$i")"
  local secure=()
  if is_secure; then
    secure=(IDEM_TLS_CERT="$DATA/tls/node-$i.pem" IDEM_TLS_KEY="$DATA/tls/node-$i.key"
      IDEM_TLS_CA="$DATA/tls/ca.pem" IDEM_AUTH_FILE="$DATA/tokens.json")
  fi
  env "${secure[@]}" IDEM_ID="$i" IDEM_LISTEN="$(addr_of "$i")" IDEM_ADVERTISE="$(addr_of "$i")" \
    IDEM_DATA_DIR="$(dir_of "$i")" IDEM_INITIAL_CLUSTER="$(initial_cluster "$n")" \
    nohup "$BIN" >>"$DATA/node-$i.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$i")"
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) i
  for i in "$@"; do
    until node_curl -fsS -o /dev/null "$(url_of "$i")/readyz" 2>/dev/null; do
      pid_of "$i" >/dev/null || die "node $i exited; see $DATA/node-$i.log"
      (( SECONDS < deadline )) || die "node $i not ready within ${READY_TIMEOUT}s; see $DATA/node-$i.log"
      sleep 0.2
    done
  done
}

cmd_start() {
  local n="${1:-}"
  need_curl
  mkdir -p "$DATA"
  if [[ -z "$n" ]]; then n="$(cat "$(size_file)" 2>/dev/null || echo 3)"; fi
  [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 1 )) || die "N must be a positive number"
  if [[ -f "$(size_file)" && "$(cat "$(size_file)")" != "$n" ]]; then
    die "$DATA holds a cluster of $(cat "$(size_file)") nodes; use that size or clean first"
  fi
  ensure_binary
  if [[ "${IDEM_SECURE:-0}" == 1 ]] && ! is_secure; then
    [[ -f "$(size_file)" ]] && die "$DATA holds a cluster started without IDEM_SECURE; clean it first"
    make_secure "$n"
  fi
  echo "$n" >"$(size_file)"
  local i ids=()
  for ((i = 1; i <= n; i++)); do start_one "$i"; ids+=("$i"); done
  wait_ready "${ids[@]}"
  for i in "${ids[@]}"; do echo "node $i: $(url_of "$i")"; done
  if is_secure; then
    echo "secure: CA $DATA/tls/ca.pem, admin token $DATA/admin.token, demo token $DATA/demo.token"
  fi
}

cmd_stop() {
  [[ -f "$(size_file)" ]] || return 0
  local n i pid pids=()
  n="$(cat "$(size_file)")"
  for ((i = 1; i <= n; i++)); do
    if pid="$(pid_of "$i")"; then kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid"; pids+=("$pid"); fi
  done
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      (( SECONDS < deadline )) || die "node pid $pid did not stop within 20s"
      sleep 0.1
    done
  done
  rm -f "$DATA"/node-*.pid
}

cmd_signal() {
  local sig="$1" i="${2:-}" pid
  check_id "$i"
  pid="$(pid_of "$i")" || die "node $i is down"
  kill "-$sig" "$pid"
  if [[ "$sig" == KILL ]]; then
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$(pid_file "$i")"
  fi
}

cmd_start_node() {
  local i="${1:-}"
  check_id "$i"
  need_curl
  ensure_binary
  pid_of "$i" >/dev/null && die "node $i is already running"
  start_one "$i"
  # A lone node cannot be ready without a quorum; wait for it to serve.
  local deadline=$((SECONDS + READY_TIMEOUT))
  until node_curl -fsS -o /dev/null "$(url_of "$i")/healthz" 2>/dev/null; do
    pid_of "$i" >/dev/null || die "node $i exited; see $DATA/node-$i.log"
    (( SECONDS < deadline )) || die "node $i not serving within ${READY_TIMEOUT}s"
    sleep 0.1
  done
  echo "node $i: $(url_of "$i")"
}

json_field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }

cmd_status() {
  [[ -f "$(size_file)" ]] || die "no cluster under $DATA"
  need_curl
  local n i pid body role
  n="$(cat "$(size_file)")"
  for ((i = 1; i <= n; i++)); do
    if ! pid="$(pid_of "$i")"; then echo "$i down"; continue; fi
    if [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == T* ]]; then echo "$i $pid paused"; continue; fi
    body="$(node_curl -fsS --max-time 2 "$(url_of "$i")/v1/cluster" 2>/dev/null || true)"
    if [[ -z "$body" ]]; then echo "$i $pid unreachable"; continue; fi
    local leader term applied
    leader="$(json_field leader_id <<<"$body")"
    term="$(json_field term <<<"$body")"
    applied="$(json_field applied_index <<<"$body")"
    if [[ "$leader" == "$i" ]]; then role=leader; elif [[ "$leader" == null ]]; then role=candidate; else role=follower; fi
    echo "$i $pid $role term=$term applied=$applied"
  done
}

cmd_clean() {
  cmd_stop || true
  if [[ -f "$(size_file)" ]]; then
    local n i pid; n="$(cat "$(size_file)")"
    for ((i = 1; i <= n; i++)); do if pid="$(pid_of "$i")"; then kill -KILL "$pid" || true; fi; done
  fi
  rm -rf "$DATA"
}

case "${1:-}" in
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop ;;
  kill) cmd_signal KILL "${2:-}" ;;
  start-node) cmd_start_node "${2:-}" ;;
  pause) cmd_signal STOP "${2:-}" ;;
  resume) cmd_signal CONT "${2:-}" ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  *) die "usage: cluster.sh start [N] | stop | kill I | start-node I | pause I | resume I | status | clean" ;;
esac
