#!/usr/bin/env bash
# Offline checks of the deployment files; no cluster, no daemon, no network
# once the tools are installed.
#
#   scripts/check-deploy.sh
#
# - deploy/prometheus/alerts.yml: `promtool check rules`, and its unit tests
#   `promtool test rules alerts_test.yml`;
# - deploy/grafana/idem.json: valid JSON, and every panel query parses as
#   PromQL (`promtool check rules` over the queries as recording rules);
# - deploy/k8s/*.yaml: `kubernetes-validate --strict` against Kubernetes
#   $K8S_VERSION (default 1.30.0), with the schemas the package ships, and every
#   IDEM_* variable the pods set is a flag of idem-node (node/src/config.rs).
#
# Installs what is missing: promtool from Debian's `prometheus` package
# (apt-get, as root), kubernetes-validate from PyPI (pip). Exits non-zero,
# naming the check, at the first failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.30.0}"

fail() { echo "check-deploy: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

if ! command -v promtool >/dev/null; then
  step "installing promtool (Debian package prometheus)"
  [[ $EUID -eq 0 ]] || fail "promtool is missing and installing it needs root: apt-get install prometheus"
  apt-get install -y -q prometheus >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; } \
    || fail "apt-get install prometheus"
fi
if ! command -v kubernetes-validate >/dev/null; then
  step "installing kubernetes-validate (PyPI)"
  python3 -m pip install -q kubernetes-validate || fail "pip install kubernetes-validate"
fi

step "promtool check rules deploy/prometheus/alerts.yml"
promtool check rules "$ROOT/deploy/prometheus/alerts.yml" || fail "alerts.yml does not check"
step "promtool test rules deploy/prometheus/alerts_test.yml"
(cd "$ROOT/deploy/prometheus" && promtool test rules alerts_test.yml) || fail "alerts_test.yml"

step "deploy/grafana/idem.json: JSON, and PromQL in every panel"
python3 -m json.tool "$ROOT/deploy/grafana/idem.json" >/dev/null || fail "idem.json is not JSON"
queries="$(mktemp --suffix=.yml)"
trap 'rm -f "$queries"' EXIT
python3 - "$ROOT/deploy/grafana/idem.json" >"$queries" <<'EOF' || fail "idem.json: no queries found"
import json, sys
def exprs(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "expr" and isinstance(x, str):
                yield x
            else:
                yield from exprs(x)
    elif isinstance(v, list):
        for x in v:
            yield from exprs(x)
found = list(exprs(json.load(open(sys.argv[1]))))
if not found:
    sys.exit(1)
# Grafana's variables stand for a range and a regex; promtool parses the rest.
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".*"}
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(found):
    for var, val in subst.items():
        e = e.replace(var, val)
    print(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}")
EOF
promtool check rules "$queries" >/dev/null || { promtool check rules "$queries"; fail "a dashboard query does not parse"; }

step "kubernetes-validate --strict -k $K8S_VERSION deploy/k8s/*.yaml"
kubernetes-validate --strict -k "$K8S_VERSION" "$ROOT"/deploy/k8s/*.yaml || fail "deploy/k8s does not validate"

step "deploy/k8s: every IDEM_* variable is a flag of idem-node"
known="$(grep -o 'env = "IDEM_[A-Z_]*"' "$ROOT/node/src/config.rs" | grep -o 'IDEM_[A-Z_]*' | sort -u)"
used="$(grep -ho 'name: IDEM_[A-Z_]*' "$ROOT"/deploy/k8s/*.yaml | grep -o 'IDEM_[A-Z_]*' | sort -u)"
unknown="$(comm -13 <(echo "$known") <(echo "$used"))"
[[ -z "$unknown" ]] || fail "deploy/k8s sets variables idem-node does not read: $unknown"
echo "$used" | grep -qx IDEM_ID || fail "deploy/k8s does not set IDEM_ID"

echo "check-deploy: all passed"
