#!/usr/bin/env bash
# Stops the local test cluster started by up.sh from CLUSTER_DIR and removes everything it left behind: pods
# (through CRI, so CNI tears down their networks), the daemons it started (by pidfile), kube-proxy's rules, the
# KUBE-*/CNI-* iptables chains, the CNI bridge, kubelet and containerd mounts under CLUSTER_DIR, the kubelet's
# cgroups, the node IP on lo and the sysctls it changed, then CLUSTER_DIR itself. Safe to run twice.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "down.sh must run as root"
if [ ! -d "$CLUSTER_DIR" ]; then
  log "no cluster in $CLUSTER_DIR; nothing to do"
  exit 0
fi
start=$EPOCHREALTIME
log "stopping the cluster in $CLUSTER_DIR"

t=$EPOCHREALTIME
lap() { log "  $1: $(elapsed "$t")s"; t=$EPOCHREALTIME; }

# 0. The second node, if any (node.sh add 2), while the API server still runs to delete its Node.
if [ -f "$STATE/node2" ] || [ -d "$NODE2_DIR" ] || ip netns list 2> /dev/null | grep -qw "$NODE2_NETNS"; then
  "$here/node.sh" remove 2 || log "removing node $NODE2_NAME failed; continuing"
  lap "second node removed"
fi

# 1. The kubelet first, so that it does not recreate the pods removed next.
stop_daemon kubelet 30
lap "kubelet stopped"

# 2. Pods through CRI while containerd still runs: CNI DEL removes their veths, IPs and rules.
if pid_of containerd > /dev/null; then
  timeout 120 crictl --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 60s rmp --all --force > /dev/null 2>&1 \
    || log "crictl rmp failed; continuing"
  lap "pods removed"
fi

# 3. kube-proxy and its rules.
stop_daemon kube-proxy
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup > "$LOGS/kube-proxy-cleanup.log" 2>&1

# 4. The rest: the API server and its clients together, etcd last.
lap "kube-proxy stopped and cleaned up"
stop_daemons 20 kube-scheduler kube-controller-manager kube-apiserver containerd
stop_daemon etcd
lap "control plane and containerd stopped"

# 5. Shims of our containerd that outlived it (matched by our socket path, never by name alone).
for p in /proc/[0-9]*; do
  cmd=$({ tr '\0' ' ' < "$p/cmdline"; } 2> /dev/null) || continue
  case $cmd in *containerd-shim*"-address $CONTAINERD_SOCK "*) kill -KILL "${p#/proc/}" 2> /dev/null && log "killed leftover shim ${p#/proc/}" ;; esac
done

# 6. Mounts under CLUSTER_DIR (pod volumes, rootfs, sandbox shm), deepest first.
unmount_all() {
  local m
  awk -v d="$CLUSTER_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || log "could not unmount $m"
  done
}
unmount_all
unmount_all

# 7. iptables: jumps into KUBE-*/CNI-* chains from the built-in chains, then those chains.
clean_iptables() {
  local ipt=$1 t rule chain chains
  command -v "$ipt" > /dev/null || return 0
  for t in filter nat mangle raw; do
    "$ipt" -t "$t" -S > /dev/null 2>&1 || continue
    "$ipt" -t "$t" -S | grep -E '^-A [^ ]+ .*-j (KUBE-|CNI-)' | grep -vE '^-A (KUBE-|CNI-)' | while read -r rule; do
      eval "$ipt -t $t ${rule/#-A/-D}" 2> /dev/null || true
    done
    chains=$("$ipt" -t "$t" -S | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}')
    for chain in $chains; do "$ipt" -t "$t" -F "$chain" 2> /dev/null; done
    for chain in $chains; do "$ipt" -t "$t" -X "$chain" 2> /dev/null || log "could not delete $ipt -t $t chain $chain"; done
  done
}
clean_iptables iptables
clean_iptables ip6tables
lap "mounts and iptables cleaned"

# 8. The CNI bridge, CNI result cache entries of our network, the kubelet's cgroups.
ip link show "$CNI_BRIDGE" > /dev/null 2>&1 && ip link delete "$CNI_BRIDGE"
rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2> /dev/null
for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2> /dev/null
done

# 9. Host settings up.sh changed.
for f in "$STATE"/sysctl.*; do
  [ -f "$f" ] || continue
  s=${f##*/sysctl.}
  [ "$(sysctl -n "$s" 2> /dev/null)" = "$(cat "$f")" ] || sysctl -qw "$s=$(cat "$f")" || log "could not restore $s"
done
if [ -f "$STATE/added-node-ip" ]; then
  ip addr del "$NODE_IP/32" dev lo 2> /dev/null || true
fi

# 10. State. Refuse to delete through a mount that is still there.
if awk -v d="$CLUSTER_DIR/" 'index($2, d) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
  die "mounts remain under $CLUSTER_DIR; not deleting it (see /proc/self/mounts)"
fi
rm -rf --one-file-system "$CLUSTER_DIR"
log "cluster stopped and removed in $(elapsed "$start")s"
