#!/usr/bin/env bash
# Writes the node's configuration under $CLUSTER_DIR: containerd (own root/state/socket, the locally built
# sandbox image, registry hosts from certs.d), the CNI bridge network, and the kubelet's KubeletConfiguration.
# Usage: node-config.sh [2]   (called by up.sh, and by node.sh for the second node, with PAUSE_IMAGE set)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
: "${PAUSE_IMAGE:?PAUSE_IMAGE must be set}"
# Per node: where its files go, its socket, network and kubelet identity.
node_dir=$CLUSTER_DIR sock=$CONTAINERD_SOCK subnet=$POD_SUBNET network=$CNI_NETWORK address=$NODE_IP
kubelet_cert=$PKI/kubelet cgroup_root="" files=$CLUSTER_DIR/$NODE_NAME
if [ "${1:-1}" = 2 ]; then
  node_dir=$NODE2_DIR sock=$NODE2_CONTAINERD_SOCK subnet=$NODE2_POD_SUBNET network=$NODE2_CNI_NETWORK address=$NODE2_IP
  kubelet_cert=$PKI/kubelet-node2
  # Its own cgroup root: two kubelets with the cgroupfs driver must not manage the same /kubepods.
  cgroup_root="cgroupRoot: /$NODE2_CGROUP"
  files=$NODE2_DIR
fi
# Each node's containerd config.toml and certs.d live in $CLUSTER_DIR/<node name>/ (node_files in lib.sh), so
# registry-kit's node-trust DaemonSet finds them with one path template: $CLUSTER_DIR/$(NODE_NAME)/...
c=$node_dir/containerd
mkdir -p "$c" "$node_dir/cni/net.d" "$node_dir/kubelet" "$files/certs.d" "$files/containerd"

# restrict_oom_score_adj: this VM lacks CAP_SYS_RESOURCE; without it every pod fails with
# "can't get final child's PID from pipe: EOF".
cat > "$files/containerd/config.toml" << TOML
version = 2
root = "$c/root"
state = "$c/state"

[grpc]
  address = "$sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$files/certs.d"
TOML

# No ipMasq: pods only talk to each other, to services, and to the host at $NODE_IP.
cat > "$node_dir/cni/net.d/10-$network.conflist" << JSON
{
  "cniVersion": "0.4.0",
  "name": "$network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node_dir/cni/ipam",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

cat > "$node_dir/kubelet/config.yaml" << YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $address
$cgroup_root
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $kubelet_cert.crt
tlsPrivateKeyFile: $kubelet_cert.key
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/kubelet/volume-plugins
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
YAML
echo "node config written under $node_dir"
