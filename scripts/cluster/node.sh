#!/usr/bin/env bash
# Adds or removes the second node of the running test cluster: a network namespace joined to the host by a veth
# pair, with its own node IP, pod subnet (routes both ways), containerd, kubelet (own root dir and cgroupRoot) and
# kube-proxy (the cluster's --proxy-mode). Pods on it reach the first node's pods, the API server and node ports
# through the network, never through the host's loopback. The node is tainted (NODE2_TAINT in lib.sh): only pods
# that tolerate it run there, so single-node tests are unaffected.
# Usage: node.sh add 2 | node.sh remove 2 | node.sh status 2      (up.sh --nodes 2 calls add; down.sh calls remove)
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "node.sh must run as root"
action=${1:-} n=${2:-}
[ "$n" = 2 ] || die "usage: node.sh add|remove|status 2 (only a second node is supported)"

kubelet2_healthy() { in_node2 curl -fsS --max-time 2 http://127.0.0.1:10248/healthz; }

network_up() {
  ip netns list | grep -qw "$NODE2_NETNS" || ip netns add "$NODE2_NETNS"
  if ! ip link show "$NODE2_VETH" > /dev/null 2>&1; then
    ip link add "$NODE2_VETH" type veth peer name rkn2-peer
    ip link set rkn2-peer netns "$NODE2_NETNS"
    in_node2 ip link set rkn2-peer name eth0
  fi
  ip link set "$NODE2_VETH" up
  in_node2 ip link set lo up
  in_node2 ip link set eth0 up
  in_node2 ip addr replace "$NODE2_IP/32" dev eth0
  # Point to point: the host's node IP (on its lo, answered by ARP on the veth) is the node's gateway.
  in_node2 ip route replace "$NODE_IP/32" dev eth0 src "$NODE2_IP"
  in_node2 ip route replace default via "$NODE_IP" dev eth0 src "$NODE2_IP"
  ip route replace "$NODE2_IP/32" dev "$NODE2_VETH" src "$NODE_IP"
  ip route replace "$NODE2_POD_SUBNET" via "$NODE2_IP" dev "$NODE2_VETH"
  # The node's own CNI bridge, made before any pod so its Service range goes there (as up.sh does on the host).
  if ! in_node2 ip link show "$CNI_BRIDGE" > /dev/null 2>&1; then
    in_node2 ip link add "$CNI_BRIDGE" type bridge
    in_node2 ip addr add "${NODE2_POD_SUBNET%.0/24}.1/24" dev "$CNI_BRIDGE"
    in_node2 ip link set "$CNI_BRIDGE" up
  fi
  in_node2 ip route replace "$SERVICE_CIDR" dev "$CNI_BRIDGE"
  in_node2 sysctl -qw net.ipv4.ip_forward=1
  in_node2 sysctl -qw net.bridge.bridge-nf-call-iptables=1 2> /dev/null || true
  # Any HTTP answer will do (401 included): the node reaches the API server through the veth.
  in_node2 curl -ks --max-time 5 -o /dev/null "$APISERVER_URL/healthz" || die "$NODE2_NAME cannot reach the API server at $APISERVER_URL over $NODE2_VETH"
}

# cgroups: /rk-node2 in every v1 hierarchy (cpuset needs cpus and mems before anything can join it).
cgroups_up() {
  local d
  for d in /sys/fs/cgroup/*/; do
    case $d in */unified/) continue ;; esac
    mkdir -p "$d$NODE2_CGROUP"
  done
  if [ -d /sys/fs/cgroup/cpuset ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus > "/sys/fs/cgroup/cpuset/$NODE2_CGROUP/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems > "/sys/fs/cgroup/cpuset/$NODE2_CGROUP/cpuset.mems"
  fi
}

pki_up() {
  [ -f "$PKI/kubelet-node2.crt" ] && return 0
  local cnf
  cnf=$(mktemp)
  (
    cd "$PKI"
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out kubelet-node2.key 2> /dev/null
    openssl req -new -key kubelet-node2.key -subj "/O=system:nodes/CN=system:node:$NODE2_NAME" -out kubelet-node2.csr
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$NODE2_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE2_IP" > "$cnf"
    openssl x509 -req -in kubelet-node2.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" -days 30 \
      -sha256 -extfile "$cnf" -out kubelet-node2.crt 2> /dev/null
    rm -f kubelet-node2.csr
    chmod 644 kubelet-node2.crt
  )
  rm -f "$cnf"
  local f=$NODE2_DIR/kubelet/kubeconfig
  kubectl config --kubeconfig "$f" set-cluster local --server "$APISERVER_URL" --certificate-authority "$PKI/ca.crt" --embed-certs > /dev/null
  kubectl config --kubeconfig "$f" set-credentials user --client-certificate "$PKI/kubelet-node2.crt" --client-key "$PKI/kubelet-node2.key" --embed-certs > /dev/null
  kubectl config --kubeconfig "$f" set-context local --cluster local --user user > /dev/null
  kubectl config --kubeconfig "$f" use-context local > /dev/null
  chmod 600 "$f"
}

add() {
  pid_of kube-apiserver > /dev/null || die "cluster in $CLUSTER_DIR is not running: run scripts/cluster/up.sh"
  if node2_up && pid_of kubelet-node2 > /dev/null && node_ready_since 0 "$NODE2_NAME"; then
    log "node $NODE2_NAME is already up"
    rewrite_env_nodes
    return 0
  fi
  local start=$EPOCHREALTIME since
  since=$(date -u +%s)
  set -a && . "$CLUSTER_DIR/images/images.env" && set +a
  mkdir -p "$NODE2_DIR"/{containerd,kubelet/root,kubelet/pki,pod-logs,certs.d,cni/ipam}
  network_up
  cgroups_up
  pki_up
  "$here/node-config.sh" 2 > "$LOGS/node-config-node2.log" 2>&1 || { cat "$LOGS/node-config-node2.log" >&2; return 1; }
  touch "$STATE/node2"
  START_NETNS=$NODE2_NETNS start_daemon containerd-node2 containerd --config "$NODE2_DIR/containerd/config.toml"
  wait_for "node2 containerd socket" 30 ctr -a "$NODE2_CONTAINERD_SOCK" version
  local img
  for img in pause test-app-node registry-kit-node; do
    [ -f "$CLUSTER_DIR/images/$img.tar" ] || continue
    ctr -a "$NODE2_CONTAINERD_SOCK" -n k8s.io images import "$CLUSTER_DIR/images/$img.tar" >> "$LOGS/images-node2.log" 2>&1 \
      || { tail "$LOGS/images-node2.log" >&2; return 1; }
  done
  START_NETNS=$NODE2_NETNS start_daemon kubelet-node2 "$K8S_BIN/kubelet" \
    --config="$NODE2_DIR/kubelet/config.yaml" --kubeconfig="$NODE2_DIR/kubelet/kubeconfig" \
    --root-dir="$NODE2_DIR/kubelet/root" --cert-dir="$NODE2_DIR/kubelet/pki" \
    --hostname-override="$NODE2_NAME" --node-ip="$NODE2_IP" --register-with-taints="$NODE2_TAINT" --v=2
  # shellcheck disable=SC2046 # word splitting of the flags is wanted
  START_NETNS=$NODE2_NETNS start_daemon kube-proxy-node2 "$K8S_BIN/kube-proxy" $(kube_proxy_flags "$NODE2_NAME" "$NODE2_IP")
  wait_for "node2 kubelet healthz" 60 kubelet2_healthy
  wait_for "node $NODE2_NAME Ready" 90 node_ready_since "$since" "$NODE2_NAME"
  wait_for "node2 kube-proxy healthz" 60 in_node2 curl -fsS --max-time 2 http://127.0.0.1:10256/healthz
  rewrite_env_nodes
  log "node $NODE2_NAME ($NODE2_IP, kube-proxy $(proxy_mode)) up in $(elapsed "$start")s"
}

remove() {
  [ -d "$NODE2_DIR" ] || ip netns list | grep -qw "$NODE2_NETNS" || { log "no node $NODE2_NAME"; return 0; }
  local start=$EPOCHREALTIME p cmd m cg
  stop_daemon kubelet-node2 30
  if pid_of containerd-node2 > /dev/null; then
    timeout 120 crictl --runtime-endpoint "unix://$NODE2_CONTAINERD_SOCK" --timeout 60s rmp --all --force > /dev/null 2>&1 \
      || log "crictl rmp on $NODE2_NAME failed; continuing"
  fi
  stop_daemons 20 kube-proxy-node2 containerd-node2
  for p in /proc/[0-9]*; do
    cmd=$({ tr '\0' ' ' < "$p/cmdline"; } 2> /dev/null) || continue
    case $cmd in *containerd-shim*"-address $NODE2_CONTAINERD_SOCK "*) kill -KILL "${p#/proc/}" 2> /dev/null && log "killed leftover shim ${p#/proc/}" ;; esac
  done
  for _ in 1 2; do
    awk -v d="$NODE2_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || log "could not unmount $m"
    done
  done
  if pid_of kube-apiserver > /dev/null; then
    kc delete node "$NODE2_NAME" --ignore-not-found --wait=false > /dev/null 2>&1 || true
  fi
  ip route del "$NODE2_POD_SUBNET" 2> /dev/null || true
  ip route del "$NODE2_IP/32" 2> /dev/null || true
  ip link del "$NODE2_VETH" 2> /dev/null || true
  ip netns del "$NODE2_NETNS" 2> /dev/null || true
  rm -f /var/lib/cni/results/"$NODE2_CNI_NETWORK"-* 2> /dev/null
  for cg in /sys/fs/cgroup/*/"$NODE2_CGROUP"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2> /dev/null
  done
  rm -f "$STATE/node2"
  if awk -v d="$NODE2_DIR/" 'index($2, d) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    log "mounts remain under $NODE2_DIR; not deleting it" >&2
  else
    rm -rf --one-file-system "$NODE2_DIR"
  fi
  rm -f "$PKI/kubelet-node2.crt" "$PKI/kubelet-node2.key"
  rewrite_env_nodes
  log "node $NODE2_NAME removed in $(elapsed "$start")s"
}

case $action in
  add) add ;;
  remove) remove ;;
  status) node2_up && pid_of kubelet-node2 > /dev/null && node_ready_since 0 "$NODE2_NAME" && echo "$NODE2_NAME up" || { echo "$NODE2_NAME down"; exit 1; } ;;
  *) die "usage: node.sh add|remove|status 2" ;;
esac
