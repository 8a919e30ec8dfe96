#!/usr/bin/env bash
# Throughput and latency of idem under concurrent claims of fresh keys, alone,
# beside etcd, or plain beside TLS.
#
#   scripts/bench.sh [--clients 1,16,64,256] [--duration 10s] [--workload claim|claim-complete]
#                    [--leader-only] [--against etcd] [--secure] [--compare-tls] [--smoke] [--out DIR]
#                    [--node-threads N]
#
#   --clients LIST   concurrency levels, comma-separated (default 1,16,64,256)
#   --duration D     per run (default 10s)
#   --leader-only    send every claim to idem's leader (else spread over the nodes)
#   --against etcd   also start a 3-member etcd 3.4 (installed with apt-get if
#                    missing) and run it after idem at each level, both leaders
#                    addressed directly
#   --secure         the idem cluster is secure (IDEM_SECURE=1: https, tokens)
#   --compare-tls    run idem plain and idem secure (leaders directly) at each level
#   --smoke          CI: 2s runs at 1 and 16 clients unless told otherwise
#   --out DIR        results.csv, table.md, plot.svg (claims/s and p99 against clients), runs.txt
#                    and the nodes' logs (default: a new temp dir); an earlier run's
#                    results.csv and runs.txt there are replaced
#   --node-threads N request threads of each server process: idem's
#                    IDEM_WORKER_THREADS, etcd's GOMAXPROCS (default: a third
#                    of the cores, at least 1; the three share the machine)
#
# Builds release binaries, starts fresh clusters on 127.0.0.1 (idem at
# IDEM_BASE_PORT, default 7400, its secure twin 100 above; etcd's clients at
# ETCD_BASE_PORT+1..3, default 23790, peers 10 above) with data in a temp dir,
# alternates the systems at each level, prints the markdown tables and removes
# the clusters on exit. Fails if a run writes nothing or errors beyond 0.1%.
# Every run also reports the CPU seconds per 1,000 claims of the servers (all
# three processes, from /proc) and of the load generator itself; the last line
# says how lean the load generator was, to show it was not the limit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bench.sh: $*" >&2; exit 1; }

CLIENTS="" DURATION="" WORKLOAD=claim LEADER_ONLY=0 AGAINST="" SECURE=0 COMPARE_TLS=0 SMOKE=0 OUT=""
# Three server processes share this machine: each gets a third of its cores
# (at least one) for its request threads, idem and etcd alike.
NODE_THREADS=$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clients) CLIENTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --workload) WORKLOAD="$2"; shift 2 ;;
    --leader-only) LEADER_ONLY=1; shift ;;
    --against) AGAINST="$2"; shift 2 ;;
    --secure) SECURE=1; shift ;;
    --compare-tls) COMPARE_TLS=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --node-threads) NODE_THREADS="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
if [[ "$SMOKE" == 1 ]]; then CLIENTS="${CLIENTS:-1,16}" DURATION="${DURATION:-2s}"; fi
CLIENTS="${CLIENTS:-1,16,64,256}" DURATION="${DURATION:-10s}"
[[ "$CLIENTS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--clients wants a list like 1,16,64"
[[ "$NODE_THREADS" =~ ^[1-9][0-9]*$ ]] || die "--node-threads wants a positive number"
[[ -z "$AGAINST" || "$AGAINST" == etcd ]] || die "--against knows only etcd"
[[ -z "$AGAINST" || "$WORKLOAD" == claim ]] || die "--against etcd compares the claim workload only"
# A comparison addresses each system's leader, so neither pays a forwarding hop.
if [[ -n "$AGAINST" || "$COMPARE_TLS" == 1 ]]; then LEADER_ONLY=1; fi

IDEM_PORT="${IDEM_BASE_PORT:-7400}" ETCD_PORT="${ETCD_BASE_PORT:-23790}"
TLS_PORT=$((IDEM_PORT + 100))
WORK="$(mktemp -d)"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT/logs"
# The table pairs each idem run with the other system's run at the same
# concurrency: rows a reused --out folder kept from an earlier run would be
# paired instead of this run's.
rm -f "$OUT/results.csv" "$OUT/runs.txt"
IDEM_DIRS=() ETCD_PIDS=()
cleanup() {
  local d p i
  for p in "${ETCD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ETCD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  cp "$WORK"/etcd-*.log "$OUT/logs/" 2>/dev/null || true
  for d in "${IDEM_DIRS[@]}"; do
    IDEM_DATA="$d" "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true
    for i in 1 2 3; do cp "$d/node-$i.log" "$OUT/logs/${d##*/}-node-$i.log" 2>/dev/null || true; done
    IDEM_DATA="$d" "$ROOT/scripts/cluster.sh" clean >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building release binaries" >&2
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release -q -p idem-node -p idem-bench)
# Copies, so a build in a shared target directory cannot swap them mid-run.
mkdir -p "$WORK/bin"
cp "$TARGET/release/idem-node" "$TARGET/release/idem-bench" "$WORK/bin/"
export IDEM_NODE_BIN="$WORK/bin/idem-node"
BENCH="$WORK/bin/idem-bench"

# endpoints SCHEME BASE_PORT: the URLs of members 1..3.
endpoints() { local e="" i; for i in 1 2 3; do e+="${e:+,}$1://127.0.0.1:$(($2 + i))"; done; echo "$e"; }

# start_idem NAME BASE_PORT [secure]: a fresh 3-node cluster with its data in $WORK/NAME.
start_idem() {
  local dir="$WORK/$1"
  IDEM_DIRS+=("$dir")
  echo "== starting a 3-node idem cluster ($1) at port $(($2 + 1)), $NODE_THREADS worker thread(s) per node" >&2
  IDEM_DATA="$dir" IDEM_BASE_PORT="$2" IDEM_SECURE="${3:+1}" IDEM_WORKER_THREADS="$NODE_THREADS" \
    "$ROOT/scripts/cluster.sh" start 3 >&2 \
    || die "idem cluster $1 did not start; see $OUT/logs/$1-node-*.log"
}

start_etcd() {
  if ! command -v etcd >/dev/null; then
    echo "== installing etcd (apt-get install etcd-server)" >&2
    [[ "$(id -u)" == 0 ]] || die "etcd is missing; install it: apt-get install etcd-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2; } \
      || die "installing etcd-server failed"
  fi
  echo "== starting a 3-member etcd ($(etcd --version | head -1)) at port $((ETCD_PORT + 1)), GOMAXPROCS=$NODE_THREADS" >&2
  local i peers=""
  for i in 1 2 3; do peers+="${peers:+,}e$i=http://127.0.0.1:$((ETCD_PORT + 10 + i))"; done
  for i in 1 2 3; do
    GOMAXPROCS="$NODE_THREADS" etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$((ETCD_PORT + i))" \
      --advertise-client-urls "http://127.0.0.1:$((ETCD_PORT + i))" \
      --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10 + i))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10 + i))" \
      --initial-cluster "$peers" --initial-cluster-state new --initial-cluster-token "idem-bench-$$" \
      --logger zap --log-outputs stderr >"$WORK/etcd-$i.log" 2>&1 &
    ETCD_PIDS+=($!)
  done
  local deadline=$((SECONDS + 30))
  for i in 1 2 3; do
    until curl -fsS "http://127.0.0.1:$((ETCD_PORT + i))/health" 2>/dev/null | grep -q '"health":"true"'; do
      kill -0 "${ETCD_PIDS[$((i - 1))]}" 2>/dev/null || die "etcd member $i exited; see $OUT/logs/etcd-$i.log"
      (( SECONDS < deadline )) || die "etcd member $i not healthy within 30s; see $OUT/logs/etcd-$i.log"
      sleep 0.2
    done
  done
}

# idem_pids NAME: the node pids of idem cluster NAME, comma-separated.
idem_pids() { cat "$WORK/$1"/node-*.pid | paste -sd, -; }

# bench_args LABEL: idem-bench's arguments for that system, into ARGS (with
# the servers' pids, whose CPU time is reported per 1,000 claims).
bench_args() {
  case "$1" in
    etcd)
      ARGS=(--target etcd --leader --endpoints "$(endpoints http "$ETCD_PORT")"
        --server-pids "$(IFS=,; echo "${ETCD_PIDS[*]}")")
      return ;;
    idem) ARGS=(--target idem --endpoints "$(endpoints http "$IDEM_PORT")" --server-pids "$(idem_pids idem)") ;;
    idem-tls)
      ARGS=(--target idem --endpoints "$(endpoints https "$TLS_PORT")" --server-pids "$(idem_pids idem-tls)"
        --ca "$WORK/idem-tls/tls/ca.pem" --token-file "$WORK/idem-tls/admin.token") ;;
  esac
  ARGS+=(--workload "$WORKLOAD")
  if [[ "$LEADER_ONLY" == 1 ]]; then ARGS+=(--leader); fi
}

# The systems run at each level, in this order.
LABELS=()
if [[ "$SECURE" == 0 || "$COMPARE_TLS" == 1 ]]; then start_idem idem "$IDEM_PORT"; LABELS+=(idem); fi
if [[ "$SECURE" == 1 || "$COMPARE_TLS" == 1 ]]; then start_idem idem-tls "$TLS_PORT" secure; LABELS+=(idem-tls); fi
if [[ -n "$AGAINST" ]]; then start_etcd; LABELS+=(etcd); fi

IFS=, read -r -a LEVELS <<<"$CLIENTS"
total=$((${#LEVELS[@]} * ${#LABELS[@]})) n=0
for c in "${LEVELS[@]}"; do
  for label in "${LABELS[@]}"; do
    n=$((n + 1))
    echo "== [$n/$total] $label at $c clients for $DURATION" >&2
    bench_args "$label"
    "$BENCH" "${ARGS[@]}" --label "$label" --clients "$c" --duration "$DURATION" --csv "$OUT/results.csv" \
      | tee -a "$OUT/runs.txt"
  done
done

"$BENCH" table "$OUT/results.csv" | tee "$OUT/table.md"
"$BENCH" plot "$OUT/results.csv" "$OUT/plot.svg"
echo "results: $OUT (results.csv, table.md, plot.svg, runs.txt, logs/)" >&2
