#!/usr/bin/env bash
# The hands of the chaos nemesis: a three-node idem cluster whose nodes each live
# in their own Linux network namespace, so the network between them can be cut
# while clients in the root namespace still reach every node.
#
#   ctl.sh setup            bridge idemch0 (10.77.0.254/24) and namespaces idem-n1..3 (10.77.0.i)
#   ctl.sh teardown         kill every node, delete namespaces, bridge and rules (idempotent)
#   ctl.sh start I          start node I in its namespace on its data (no-op if it runs)
#   ctl.sh kill I           SIGKILL node I and wait until it is gone
#   ctl.sh pause I          SIGSTOP node I
#   ctl.sh resume I         SIGCONT node I (no-op if it is not running)
#   ctl.sh cut A B          drop all packets between nodes A and B, both ways
#   ctl.sh heal             remove every cut
#   ctl.sh nodes            the client addresses, comma-separated (node 1 first)
#   ctl.sh status           one line per node: id, address, pid or down
#
# Node I listens on 10.77.0.I:700I. Needs root (ip netns, iptables).
# Environment: CHAOS_DIR (required for start: node I keeps data-I/, node-I.log,
# node-I.pid there), CHAOS_TLS_DIR (a secure cluster's ca.pem, node-I.pem,
# node-I.key, tokens.json: nodes start with TLS and tokens), IDEM_NODE_BIN
# (default target/release/idem-node),
# CHAOS_SIZE (default 3). Every failure exits non-zero with one line.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
SIZE="${CHAOS_SIZE:-3}"
NET=10.77.0
BRIDGE=idemch0
HOST_ADDR="$NET.254"

ns_of() { echo "idem-n$1"; }
ip_of() { echo "$NET.$1"; }
addr_of() { echo "$(ip_of "$1"):$((7000 + $1))"; }
in_ns() { local i="$1"; shift; ip netns exec "$(ns_of "$i")" "$@"; }
dir() { [[ -n "${CHAOS_DIR:-}" ]] || die "CHAOS_DIR is not set"; echo "$CHAOS_DIR"; }

check_id() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= SIZE )) || die "node id 1..$SIZE expected, got '${1:-}'"
}

pid_of() { local f; f="$(dir)/node-$1.pid"; live_pid "$f"; }

# Bridged traffic goes through the root namespace's FORWARD chain when
# br_netfilter is loaded (Docker sets its policy to DROP): let ours through.
FORWARD_RULE=(FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT)

setup() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "$BRIDGE exists; run teardown first"
  ip link add "$BRIDGE" type bridge
  ip addr add "$HOST_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  iptables -I "${FORWARD_RULE[@]}"
  local i
  for ((i = 1; i <= SIZE; i++)); do
    ip netns add "$(ns_of "$i")"
    ip link add "videm$i" type veth peer name "cidem$i"
    ip link set "cidem$i" netns "$(ns_of "$i")"
    ip link set "videm$i" master "$BRIDGE" up
    in_ns "$i" ip link set lo up
    in_ns "$i" ip addr add "$(ip_of "$i")/24" dev "cidem$i"
    in_ns "$i" ip link set "cidem$i" up
  done
}

teardown() {
  local i pid
  for ((i = 1; i <= SIZE; i++)); do
    if [[ -n "${CHAOS_DIR:-}" ]] && pid="$(pid_of "$i")"; then
      kill -CONT "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    fi
    ip netns del "$(ns_of "$i")" 2>/dev/null || true
    ip link del "videm$i" 2>/dev/null || true
  done
  while iptables -C "${FORWARD_RULE[@]}" 2>/dev/null; do iptables -D "${FORWARD_RULE[@]}"; done
  ip link del "$BRIDGE" 2>/dev/null || true
}

start() {
  local i="$1" d; d="$(dir)"
  pid_of "$i" >/dev/null && return 0
  [[ -x "$BIN" ]] || die "no idem-node binary at $BIN"
  mkdir -p "$d/data-$i"
  local secure=()
  if [[ -n "${CHAOS_TLS_DIR:-}" ]]; then
    local t="$CHAOS_TLS_DIR"
    secure=(IDEM_TLS_CERT="$t/node-$i.pem" IDEM_TLS_KEY="$t/node-$i.key" IDEM_TLS_CA="$t/ca.pem"
      IDEM_AUTH_FILE="$t/tokens.json")
  fi
  env "${secure[@]}" IDEM_ID="$i" IDEM_LISTEN="$(addr_of "$i")" IDEM_ADVERTISE="$(addr_of "$i")" \
    IDEM_DATA_DIR="$d/data-$i" IDEM_INITIAL_CLUSTER="$(initial_cluster "$SIZE")" IDEM_TEST_HOOKS=true \
    nohup ip netns exec "$(ns_of "$i")" "$BIN" >>"$d/node-$i.log" 2>&1 </dev/null &
  echo $! >"$d/node-$i.pid"
}

kill_node() {
  local pid n
  pid="$(pid_of "$1")" || return 0
  kill -KILL "$pid"
  for ((n = 0; n < 100; n++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  die "node $1 (pid $pid) survived SIGKILL for 5 s"
}

signal() {
  local pid
  pid="$(pid_of "$2")" || return 0
  kill "-$1" "$pid"
}

# Drop packets between A and B, in both namespaces and both directions, so a
# half-open connection cannot leak a message either way.
cut() {
  local a="$1" b="$2"
  in_ns "$a" iptables -A INPUT -s "$(ip_of "$b")" -j DROP
  in_ns "$a" iptables -A OUTPUT -d "$(ip_of "$b")" -j DROP
  in_ns "$b" iptables -A INPUT -s "$(ip_of "$a")" -j DROP
  in_ns "$b" iptables -A OUTPUT -d "$(ip_of "$a")" -j DROP
}

heal() {
  local i
  for ((i = 1; i <= SIZE; i++)); do
    in_ns "$i" iptables -F INPUT
    in_ns "$i" iptables -F OUTPUT
  done
}

nodes() {
  local spec="" i
  for ((i = 1; i <= SIZE; i++)); do spec+="${spec:+,}$(addr_of "$i")"; done
  echo "$spec"
}

status() {
  local i pid
  for ((i = 1; i <= SIZE; i++)); do
    pid="$(pid_of "$i")" || pid=down
    echo "$i $(addr_of "$i") $pid"
  done
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup) setup ;;
  teardown) teardown ;;
  start) check_id "${1:-}"; start "$1" ;;
  kill) check_id "${1:-}"; kill_node "$1" ;;
  pause) check_id "${1:-}"; signal STOP "$1" ;;
  resume) check_id "${1:-}"; signal CONT "$1" ;;
  cut) check_id "${1:-}"; check_id "${2:-}"; cut "$1" "$2" ;;
  heal) heal ;;
  nodes) nodes ;;
  status) status ;;
  *) die "usage: ctl.sh setup|teardown|start I|kill I|pause I|resume I|cut A B|heal|nodes|status" ;;
esac
