#!/usr/bin/env bash
# Run idem-node's fuzz targets for longer than `cargo test` does (about one
# second each there). Usage:
#
#   scripts/fuzz.sh [--time 60s] [TARGET...]
#
# TARGET: bodies, codec, paths, registry (default: all, one after another).
# --time: per target, as Ns, Nm or Nms (default 60s). The targets are bolero
# tests run by its random engine on stable Rust (BOLERO_RANDOM_TEST_TIME_MS
# sets how long); a failure prints the input and the BOLERO_RANDOM_SEED that
# replays it, and this script exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "${0##*/}: $*" >&2; exit 1; }

# target name -> cargo test selection and the exact test name.
declare -A SELECT=(
  [bodies]="--lib"
  [codec]="--lib"
  [paths]="--lib"
  [registry]="--lib"
)
declare -A TEST=(
  [bodies]="api::bodies_fuzz::every_body_is_accepted_or_refused_with_bad_request"
  [codec]="codec::tests::raft_messages_decode_without_panic_or_unbounded_allocation"
  [paths]="api::extract::tests::record_paths_decode_to_what_the_client_encoded"
  [registry]="registry::apply::fuzz::arbitrary_entries_keep_tokens_growing_and_replicas_equal"
)
ALL=(bodies codec paths registry)

ms_of() {
  case "$1" in
    *ms) echo "${1%ms}" ;;
    *s) echo $(( ${1%s} * 1000 )) ;;
    *m) echo $(( ${1%m} * 60000 )) ;;
    *) return 1 ;;
  esac
}

time_arg=60s
targets=()
while (($#)); do
  case "$1" in
    --time) [[ $# -ge 2 ]] || die "--time needs a value"; time_arg="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [[ -n "${TEST[$1]:-}" ]] || die "unknown target $1 (one of: ${ALL[*]})"; targets+=("$1"); shift ;;
  esac
done
[[ "$time_arg" =~ ^[0-9]+(ms|s|m)$ ]] || die "--time takes Ns, Nm or Nms, not $time_arg"
ms="$(ms_of "$time_arg")"
((${#targets[@]})) || targets=("${ALL[@]}")

echo "== building the fuzz targets"
cargo test -p idem-node --locked --no-run -q

failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for $time_arg ($(date -u +%H:%M:%S))"
  # shellcheck disable=SC2086 # the selection is two words on purpose
  if BOLERO_RANDOM_TEST_TIME_MS="$ms" cargo test -p idem-node --locked -q ${SELECT[$t]} -- --exact "${TEST[$t]}"; then
    echo "== $t: no failure in $time_arg"
  else
    echo "== $t: FAILED (the input and BOLERO_RANDOM_SEED are above)" >&2
    failed+=("$t")
  fi
done
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
echo "== fuzz: all ${#targets[@]} target(s) passed"
