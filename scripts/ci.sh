#!/usr/bin/env bash
# The whole test run, from a fresh machine: installs what the tests need, runs the unit tier, starts the local
# Kubernetes cluster, runs the end-to-end tier against it and stops the cluster again.
#   scripts/ci.sh        everything
#   scripts/ci.sh e2e    skip vet and the unit tier
set -euo pipefail
cd "$(dirname "$0")/.."

export REGISTRY_KIT_CACHE=${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/registry-kit-cluster}
export PATH="$REGISTRY_KIT_CACHE/bin:$PATH"
mode=${1:-all}
t0=$SECONDS
step() { printf '\n=== %s (t+%ds)\n' "$*" "$((SECONDS - t0))"; }

step setup
scripts/setup.sh

step build
make build

if [ "$mode" = all ]; then
  step "vet"
  make vet
  step "unit tests"
  go test -count=1 ./...
fi

step "cluster up"
# A cluster that was already serving stays up afterwards (someone is using it); one this run starts is stopped.
stop_cluster=1
if [ -f "$CLUSTER_DIR/kubeconfig" ] && kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz > /dev/null 2>&1; then
  echo "a cluster is already running in $CLUSTER_DIR: using it and leaving it up"
  stop_cluster=0
fi
e2e_log=$(mktemp)
finish() {
  if [ "$stop_cluster" = 1 ]; then
    step "cluster down"
    scripts/cluster/down.sh || true
  fi
  if [ -s "$e2e_log" ]; then # the e2e tier's top-level tests, as the last line
    printf '\ne2e: %d passed, %d failed\n' "$(grep -c '^--- PASS' "$e2e_log")" "$(grep -c '^--- FAIL' "$e2e_log")"
  fi
  rm -f "$e2e_log"
}
trap finish EXIT
# Two nodes (the second in its own network namespace, tainted so only the node tests use it), kube-proxy in
# iptables mode; then the node tests again with kube-proxy in nftables mode (no localhost node ports).
scripts/cluster/up.sh --nodes 2
# shellcheck disable=SC1091
source "$CLUSTER_DIR/env"

step "e2e tests"
E2E_REQUIRE_NODES=2 make e2e-only 2>&1 | tee "$e2e_log"

step "e2e node tests, kube-proxy nftables"
scripts/cluster/up.sh --nodes 2 --proxy-mode nftables
# shellcheck disable=SC1091
source "$CLUSTER_DIR/env"
E2E_REQUIRE_NODES=2 make e2e-only E2E_RUN='^TestNodes' 2>&1 | tee -a "$e2e_log"
step "done"
