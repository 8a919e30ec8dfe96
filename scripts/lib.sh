# Sourced by scripts/cluster.sh and scripts/chaos/ctl.sh, never run: what both
# need to drive idem-node processes. A sourcing script defines addr_of I (node
# I's host:port) before it calls initial_cluster.

# The repository, and the node binary both scripts start.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${IDEM_NODE_BIN:-$ROOT/target/release/idem-node}"

# Fails with one line on stderr, prefixed by the script's name.
die() { echo "${0##*/}: $*" >&2; exit 1; }

# The pid written in pid file $1, if that process is still alive; else fails.
live_pid() {
  [[ -f "$1" ]] || return 1
  local pid; pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# --initial-cluster for nodes 1..N: 1=addr,2=addr,...
initial_cluster() {
  local n="$1" spec="" i
  for ((i = 1; i <= n; i++)); do spec+="${spec:+,}$i=$(addr_of "$i")"; done
  echo "$spec"
}
