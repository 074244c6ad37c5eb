#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine for the e2e suite: Debian etcd, containerd, runc and
# CNI plugins, plus kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy built once from
# the Go module proxy (build.sh). Nothing is pulled: the pause and test-app images are built from Go sources here.
# Everything listens on loopback or on 10.200.0.1, which this script adds to lo (the kubelet refuses a loopback
# node IP); pods reach the API at 10.0.0.1 and host services at 10.200.0.1.
#
# Usage: scripts/cluster/up.sh [--nodes 1|2] [--proxy-mode iptables|nftables]   (CLUSTER_DIR: /tmp/registry-kit-cluster)
#   --nodes 2: also the second node (node.sh add 2: own network namespace, node IP 10.200.0.2, tainted)
#   --proxy-mode: kube-proxy's mode on every node (nftables: no localhost node ports); default iptables
# Then:  source "$CLUSTER_DIR/env"         (KUBECONFIG, CONTAINERD_SOCK, TEST_APP_IMAGE, CLUSTER_NODE2_*, ...)
# Stop:  scripts/cluster/down.sh
# Idempotent: a healthy cluster already running from CLUSTER_DIR is left as it is (a second node is added or
# removed as --nodes says; another --proxy-mode restarts it).
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

want_nodes="" want_mode=iptables
while [ $# -gt 0 ]; do
  case $1 in
    --nodes) want_nodes=${2:-}; shift 2 ;;
    --nodes=*) want_nodes=${1#--nodes=}; shift ;;
    --proxy-mode) want_mode=${2:-}; shift 2 ;;
    --proxy-mode=*) want_mode=${1#--proxy-mode=}; shift ;;
    *) die "unknown argument $1 (usage: up.sh [--nodes 1|2] [--proxy-mode iptables|nftables])" ;;
  esac
done
case $want_nodes in "" | 1 | 2) ;; *) die "--nodes $want_nodes: want 1 or 2" ;; esac
case $want_mode in iptables | nftables) ;; *) die "--proxy-mode $want_mode: want iptables or nftables" ;; esac

[ "$(id -u)" = 0 ] || die "up.sh must run as root (it starts containerd and the kubelet)"
log "CLUSTER_DIR=$CLUSTER_DIR"

total_start=$EPOCHREALTIME
step_name="" step_start=""
step() { # step NAME: ends the previous step (printing its duration) and starts NAME
  local now=$EPOCHREALTIME
  [ -n "$step_name" ] && log "$(printf '%-40s %6ss' "$step_name" "$(elapsed "$step_start")")"
  step_name=$1 step_start=$now
}
on_error() {
  local rc=$?
  trap - ERR
  log "cluster did not come up (step: ${step_name:-preflight}, exit $rc); component logs follow" >&2
  print_logs
  log "logs: $LOGS; clean up with: $here/down.sh" >&2
  exit "$rc"
}

healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_of "$c" > /dev/null || return 1; done
  [ "$(proxy_mode)" = "$want_mode" ] || return 1
  kc get --raw /readyz > /dev/null 2>&1 && node_ready_since 0 && kc -n default get serviceaccount default > /dev/null 2>&1
}

# build_images: the pause, test-app and registry-kit images from the working tree, into $CLUSTER_DIR/images
# (built aside and swapped in, so tests reading the old layout never see a half-written one).
build_images() {
  local dir=$CLUSTER_DIR/images
  rm -rf "$dir.new" "$dir.old"
  "$here/images/build.sh" "$dir.new" > "$LOGS/images.log" 2>&1 || { cat "$LOGS/images.log" >&2; return 1; }
  [ ! -d "$dir" ] || mv "$dir" "$dir.old"
  mv "$dir.new" "$dir"
  rm -rf "$dir.old"
  set -a && . "$dir/images.env" && set +a
}

# import_images: into containerd's k8s.io namespace, where the kubelet finds them without pulling.
import_images() {
  local img
  local img sock socks=("$CONTAINERD_SOCK")
  node2_up && socks+=("$NODE2_CONTAINERD_SOCK")
  for sock in "${socks[@]}"; do
    for img in pause test-app-node registry-kit-node; do
      [ -f "$CLUSTER_DIR/images/$img.tar" ] || continue
      ctr -a "$sock" -n k8s.io images import "$CLUSTER_DIR/images/$img.tar" >> "$LOGS/images.log" 2>&1 \
        || { tail "$LOGS/images.log" >&2; return 1; }
    done
  done
}

# nodes_as_asked: adds or removes the second node as --nodes says (nothing without --nodes).
nodes_as_asked() {
  case $want_nodes in
    2) "$here/node.sh" add 2 ;;
    1) if node2_up; then "$here/node.sh" remove 2; fi ;;
  esac
}

# write_env: $CLUSTER_DIR/env for tests and shells.
write_env() {
  cat > "$CLUSTER_DIR/env.tmp" << EOF
# Written by scripts/cluster/up.sh; source it.
export CLUSTER_DIR=$CLUSTER_DIR
export KUBECONFIG=$KUBECONFIG_ADMIN
export CONTAINERD_SOCK=$CONTAINERD_SOCK
export CONTAINERD_CERTS_D=$CLUSTER_DIR/$NODE_NAME/certs.d
export CLUSTER_NODE_IP=$NODE_IP
export CLUSTER_NODE_NAME=$NODE_NAME
export CLUSTER_CONTAINERD_CONFIG=$CLUSTER_DIR/$NODE_NAME/containerd/config.toml
# Each node's containerd files, as registry-kit's --containerd-config / --containerd-certs-dir templates.
export CLUSTER_CONTAINERD_CONFIG_TEMPLATE='$CLUSTER_DIR/\$(NODE_NAME)/containerd/config.toml'
export CLUSTER_CONTAINERD_CERTS_D_TEMPLATE='$CLUSTER_DIR/\$(NODE_NAME)/certs.d'

export PAUSE_IMAGE=$PAUSE_IMAGE
# *_IMAGE: preloaded on the node (use imagePullPolicy Never). *_DIGEST and the layouts/tarballs: the copy to push to
# registries, a different image ID than the preloaded one (see scripts/cluster/images/build.sh).
export TEST_APP_IMAGE=$TEST_APP_IMAGE
export TEST_APP_IMAGE_DIGEST=$TEST_APP_IMAGE_DIGEST
export TEST_APP_OCI_LAYOUT=$CLUSTER_DIR/images/test-app-layout
export TEST_APP_OCI_TAR=$CLUSTER_DIR/images/test-app.tar
export TEST_APP_DOCKER_TAR=$CLUSTER_DIR/images/test-app.docker.tar
EOF
  if [ -n "${REGISTRY_KIT_IMAGE_DIGEST:-}" ]; then
    cat >> "$CLUSTER_DIR/env.tmp" << EOF
export REGISTRY_KIT_IMAGE=$REGISTRY_KIT_IMAGE
export REGISTRY_KIT_IMAGE_DIGEST=$REGISTRY_KIT_IMAGE_DIGEST
export REGISTRY_KIT_OCI_LAYOUT=$CLUSTER_DIR/images/registry-kit-layout
EOF
  fi
  { echo "# --- nodes ---"; node_env; } >> "$CLUSTER_DIR/env.tmp"
  mv "$CLUSTER_DIR/env.tmp" "$CLUSTER_DIR/env"
}

# --- already up? -------------------------------------------------------------------------------------------------
if [ -f "$CLUSTER_DIR/env" ] && healthy; then
  log "cluster in $CLUSTER_DIR is already up and healthy; refreshing its images from the working tree"
  step "images (pause, test-app, registry-kit)"
  build_images && import_images && write_env || { log "refreshing images failed" >&2; exit 1; }
  step "nodes"
  nodes_as_asked || { log "changing the second node failed" >&2; exit 1; }
  step ""
  echo "source $CLUSTER_DIR/env"
  exit 0
fi
if [ -d "$PIDS" ] && [ -n "$(ls -A "$PIDS" 2> /dev/null)" ]; then
  log "a previous cluster in $CLUSTER_DIR is partly running, unhealthy or in kube-proxy mode $(proxy_mode) (want $want_mode); tearing it down first"
  "$here/down.sh"
fi
trap on_error ERR

# --- preflight -----------------------------------------------------------------------------------------------------
step "kubernetes binaries"
"$here/build.sh"
for tool in etcd containerd containerd-shim-runc-v2 runc ctr crictl iptables ip6tables conntrack openssl kubectl curl ip ss; do
  command -v "$tool" > /dev/null || die "$tool not found (Debian packages and crictl: see ../shared/TESTING.md / scripts/setup.sh)"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins missing in /usr/lib/cni (apt-get install containernetworking-plugins)"
in_use=$(ss -Htln | awk '{print $4}' | grep -E '(127\.0\.0\.1|10\.200\.0\.1|0\.0\.0\.0|\*|\[::\]):(2379|2380|6443|10248|10249|10250|10256|10257|10259)$' || true)
[ -z "$in_use" ] || die "ports needed by the cluster are in use (another cluster running? try down.sh): $in_use"

mkdir -p "$LOGS" "$PIDS" "$PKI" "$STATE" "$CLUSTER_DIR"/{etcd,containerd,cni/net.d,cni/ipam,"$NODE_NAME"/certs.d,kubelet/root,kubelet/pki,pod-logs}
ln -sfn "$NODE_NAME/certs.d" "$CLUSTER_DIR/certs.d" # the older name of node1's certs.d
echo "$want_mode" > "$STATE/proxy-mode"
if [ "$want_mode" = nftables ]; then command -v nft > /dev/null || die "nft not found: kube-proxy's nftables mode needs it (apt-get install nftables)"; fi

# --- host networking (recorded so down.sh can restore it) -------------------------------------------------------
step "host network"
if ! ip -4 addr show dev lo | grep -q "inet $NODE_IP/"; then
  ip addr add "$NODE_IP/32" dev lo
  touch "$STATE/added-node-ip"
fi
# The CNI bridge, made before any pod so the Service range can be routed to it: otherwise a ClusterIP that
# kube-proxy has not programmed yet follows the default route out of the machine (and something answers there).
if ! ip link show "$CNI_BRIDGE" > /dev/null 2>&1; then
  ip link add "$CNI_BRIDGE" type bridge
  ip addr add "${POD_SUBNET%.0/24}.1/24" dev "$CNI_BRIDGE"
  ip link set "$CNI_BRIDGE" up
fi
ip route replace "$SERVICE_CIDR" dev "$CNI_BRIDGE"
for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
  old=$(sysctl -n "$s")
  [ -f "$STATE/sysctl.$s" ] || echo "$old" > "$STATE/sysctl.$s"
  [ "$old" = 1 ] || sysctl -qw "$s=1"
done
# The kubelet sets these kernel defaults when it starts, and kube-proxy sets route_localnet so node ports answer on
# 127.0.0.1 as on a default iptables-mode cluster (registry-kit deploy's localhost:<nodePort> pull address needs
# that); remember the host's values for down.sh.
for s in net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
  [ -f "$STATE/sysctl.$s" ] || sysctl -n "$s" > "$STATE/sysctl.$s" 2> /dev/null || rm -f "$STATE/sysctl.$s"
done

step "images (pause, test-app, registry-kit)"
build_images

# --- PKI and kubeconfigs -----------------------------------------------------------------------------------------
step "pki + kubeconfigs"
"$here/pki.sh" "$PKI" > "$LOGS/pki.log" 2>&1 || { cat "$LOGS/pki.log" >&2; false; }
kubeconfig() { # kubeconfig FILE CERT_NAME
  local f=$1
  kubectl config --kubeconfig "$f" set-cluster local --server "$APISERVER_URL" --certificate-authority "$PKI/ca.crt" --embed-certs > /dev/null
  kubectl config --kubeconfig "$f" set-credentials user --client-certificate "$PKI/$2.crt" --client-key "$PKI/$2.key" --embed-certs > /dev/null
  kubectl config --kubeconfig "$f" set-context local --cluster local --user user > /dev/null
  kubectl config --kubeconfig "$f" use-context local > /dev/null
  chmod 600 "$f"
}
kubeconfig "$KUBECONFIG_ADMIN" admin
kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" scheduler
kubeconfig "$CLUSTER_DIR/kube-proxy.kubeconfig" kube-proxy
kubeconfig "$CLUSTER_DIR/kubelet/kubeconfig" kubelet

# --- control plane -----------------------------------------------------------------------------------------------
step "etcd"
start_daemon etcd etcd --name node1 --data-dir "$CLUSTER_DIR/etcd" --unsafe-no-fsync \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster node1=http://127.0.0.1:2380
wait_for "etcd health" 30 curl -fsS --max-time 2 http://127.0.0.1:2379/health

step "kube-apiserver"
start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address="$NODE_IP" --secure-port=6443 --advertise-address="$NODE_IP" \
  --service-cluster-ip-range="$SERVICE_CIDR" --service-node-port-range=30000-32767 \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --profiling=false
wait_for "kube-apiserver /readyz" 120 kc get --raw /readyz

step "controller-manager + scheduler"
start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false
start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false
wait_for "kube-controller-manager healthz" 60 curl -kfsS --max-time 2 https://127.0.0.1:10257/healthz
wait_for "kube-scheduler healthz" 60 curl -kfsS --max-time 2 https://127.0.0.1:10259/healthz

# --- node: containerd, images, kubelet, kube-proxy ------------------------------------------------------------------
step "containerd + image import"
"$here/node-config.sh" > "$LOGS/node-config.log" 2>&1 || { cat "$LOGS/node-config.log" >&2; false; }
start_daemon containerd containerd --config "$CLUSTER_DIR/$NODE_NAME/containerd/config.toml"
wait_for "containerd socket" 30 ctr -a "$CONTAINERD_SOCK" version
import_images

step "kubelet + kube-proxy"
start_kubelet
# shellcheck disable=SC2046 # word splitting of the flags is wanted
start_daemon kube-proxy "$K8S_BIN/kube-proxy" $(kube_proxy_flags "$NODE_NAME" "$NODE_IP")
wait_kubelet_ready 0
wait_for "kube-proxy healthz" 60 curl -fsS --max-time 2 http://127.0.0.1:10256/healthz

step "default ServiceAccount"
wait_for "ServiceAccount default/default" 120 kc -n default get serviceaccount default

# --- hand-off ------------------------------------------------------------------------------------------------------
step "write env"
write_env
if [ "$want_nodes" = 2 ]; then
  step "second node"
  "$here/node.sh" add 2
fi
step ""
log "$(printf '%-40s %6ss' "total" "$(elapsed "$total_start")")"
log "cluster is up: source $CLUSTER_DIR/env   (stop with $here/down.sh)"
