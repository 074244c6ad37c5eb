# Shared settings and helpers of the local test cluster scripts (up.sh, down.sh, kubelet.sh); source it, do not run it.
# Every daemon runs in its own session with a pidfile under $CLUSTER_DIR/pids (PID + binary path), so the scripts
# stop exactly the processes they started and never match by name.

CLUSTER_DIR=${CLUSTER_DIR:-/tmp/registry-kit-cluster}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
CACHE_DIR=${CACHE_DIR:-${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}}
K8S_BIN=$CACHE_DIR/k8s/$K8S_VERSION/bin
export PATH="$CACHE_DIR/bin:$PATH"

NODE_IP=10.200.0.1
NODE_NAME=node1
SERVICE_CIDR=10.0.0.0/24
API_SERVICE_IP=10.0.0.1
CLUSTER_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
CNI_NETWORK=registry-kit
CNI_BRIDGE=rkcni0
APISERVER_URL=https://$NODE_IP:6443

LOGS=$CLUSTER_DIR/logs
PIDS=$CLUSTER_DIR/pids
PKI=$CLUSTER_DIR/pki
STATE=$CLUSTER_DIR/state
CONTAINERD_SOCK=$CLUSTER_DIR/containerd/containerd.sock
KUBECONFIG_ADMIN=$CLUSTER_DIR/kubeconfig

# Daemons in start order; down.sh stops them in reverse. The second node's (node.sh add 2) are checked only while
# it is up (wait_for skips daemons without a pidfile).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
NODE2_COMPONENTS=(containerd-node2 kubelet-node2 kube-proxy-node2)

# The second node (scripts/cluster/node.sh add 2): its own network namespace joined to the host by a veth pair,
# its own node IP (10.200.0.2, routed to the veth; the host's 10.200.0.1 is its gateway), pod subnet (routed via
# its node IP), containerd, kubelet (cgroupRoot /rk-node2) and kube-proxy. It carries the taint NODE2_TAINT so
# only pods that tolerate it (the tests that want a second node, and registry-kit's DaemonSets) run there.
NODE2_NAME=node2
NODE2_IP=10.200.0.2
NODE2_NETNS=rk-node2
NODE2_VETH=rkn2
NODE2_POD_SUBNET=10.244.1.0/24
NODE2_DIR=$CLUSTER_DIR/node2
NODE2_CONTAINERD_SOCK=$NODE2_DIR/containerd/containerd.sock
NODE2_CGROUP=rk-node2
NODE2_TAINT=registry-kit.dev/second-node=true:NoSchedule
NODE2_CNI_NETWORK=registry-kit-node2

# proxy_mode: kube-proxy's mode of this cluster (up.sh --proxy-mode), iptables unless recorded otherwise.
proxy_mode() { cat "$STATE/proxy-mode" 2> /dev/null || echo iptables; }

# kube_proxy_flags NODE_NAME NODE_IP: kube-proxy's flags for a node. Metrics (and /proxyMode, /configz) listen
# on the node IP, so registry-kit deploy can read the mode through the API server's node proxy. nftables mode
# serves node ports on the node IP only (no localhost node ports).
kube_proxy_flags() {
  local mode addrs
  mode=$(proxy_mode)
  addrs="127.0.0.0/8,$2/32"
  [ "$mode" = nftables ] && addrs="$2/32"
  echo --kubeconfig="$CLUSTER_DIR/kube-proxy.kubeconfig" --hostname-override="$1" \
    --proxy-mode="$mode" --cluster-cidr="$CLUSTER_CIDR" --nodeport-addresses="$addrs" \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address="$2:10249" --oom-score-adj=0 \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0
}

# in_node2 COMMAND...: runs COMMAND in the second node's network namespace (the host's mount namespace, which
# its containerd and kubelet must share).
in_node2() { nsenter --net="/var/run/netns/$NODE2_NETNS" -- "$@"; }

# node2_up: the second node's daemons were started (node.sh add 2).
node2_up() { [ -f "$STATE/node2" ]; }

# node_env: env lines of the nodes beyond the first, for $CLUSTER_DIR/env.
node_env() {
  echo "export CLUSTER_PROXY_MODE=$(proxy_mode)"
  if node2_up; then
    cat << EOF
export CLUSTER_NODES=2
# The second node (scripts/cluster/node.sh add 2): tainted $NODE2_TAINT.
export CLUSTER_NODE2_NAME=$NODE2_NAME
export CLUSTER_NODE2_IP=$NODE2_IP
export CLUSTER_NODE2_TAINT=$NODE2_TAINT
export CLUSTER_NODE2_CONTAINERD_SOCK=$NODE2_CONTAINERD_SOCK
export CLUSTER_NODE2_CONTAINERD_CONFIG=$NODE2_DIR/containerd/config.toml
export CLUSTER_NODE2_CERTS_D=$NODE2_DIR/certs.d
EOF
  else
    echo "export CLUSTER_NODES=1"
  fi
}

# rewrite_env_nodes: replaces the node lines of $CLUSTER_DIR/env (after the marker) with node_env's.
rewrite_env_nodes() {
  local f=$CLUSTER_DIR/env
  [ -f "$f" ] || return 0
  { sed '/^# --- nodes ---$/,$d' "$f"; echo "# --- nodes ---"; node_env; } > "$f.tmp"
  mv "$f.tmp" "$f"
}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# elapsed START: seconds since START (an $EPOCHREALTIME value), one decimal.
elapsed() { awk -v a="$EPOCHREALTIME" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# pid_of NAME: prints the PID of a daemon this cluster started if it is still that binary, else fails.
pid_of() {
  local f=$PIDS/$1.pid pid exe
  [ -f "$f" ] || return 1
  { read -r pid; read -r exe; } < "$f" || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || return 1
  echo "$pid"
}

# start_daemon NAME BINARY ARGS...: runs BINARY in a new session, logs to $LOGS/NAME.log, records its PID. With
# START_NETNS set, in that network namespace (nsenter execs BINARY, so the PID is still the daemon's).
# The script has no job control, so the background child is not a group leader and setsid execs in place: $! is
# the daemon itself.
start_daemon() {
  local name=$1 bin=$2 pid i
  shift 2
  bin=$(readlink -f "$(command -v "$bin")") || die "$2: not found"
  mkdir -p "$LOGS" "$PIDS"
  echo "=== $(date -u +%FT%TZ) $bin $*" >> "$LOGS/$name.log"
  if [ -n "${START_NETNS:-}" ]; then
    setsid nsenter --net="/var/run/netns/$START_NETNS" -- "$bin" "$@" < /dev/null >> "$LOGS/$name.log" 2>&1 &
  else
    setsid "$bin" "$@" < /dev/null >> "$LOGS/$name.log" 2>&1 &
  fi
  pid=$!
  printf '%s\n%s\n' "$pid" "$bin" > "$PIDS/$name.pid"
  for ((i = 0; i < 50; i++)); do # until setsid has exec'd the daemon (or it died)
    [ "$(readlink "/proc/$pid/exe" 2> /dev/null)" = "$bin" ] && return 0
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  log "$name did not start; see $LOGS/$name.log" >&2
  return 1
}

# stop_daemon NAME [TIMEOUT_SECONDS]: SIGTERM, then SIGKILL after the timeout; removes the pidfile.
stop_daemon() {
  local name=$1 timeout=${2:-20} pid i
  if pid=$(pid_of "$name"); then
    kill -TERM "$pid" 2> /dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      log "$name (pid $pid) ignored SIGTERM for ${timeout}s; killing"
      kill -KILL "$pid" 2> /dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$PIDS/$name.pid"
}

# stop_daemons TIMEOUT NAME...: stop_daemon for several at once (SIGTERM to all, then wait), for teardown.
stop_daemons() {
  local timeout=$1 name pid i alive
  shift
  for name in "$@"; do
    pid=$(pid_of "$name") && kill -TERM "$pid" 2> /dev/null
  done
  for ((i = 0; i < timeout * 10; i++)); do
    alive=0
    for name in "$@"; do pid_of "$name" > /dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for name in "$@"; do stop_daemon "$name" 1; done
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND every 0.2 s; also fails early when a daemon
# this cluster started has died.
wait_for() {
  local what=$1 timeout=$2 deadline c
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" > /dev/null 2>&1; do
    for c in "${COMPONENTS[@]}" "${NODE2_COMPONENTS[@]}"; do
      if [ -f "$PIDS/$c.pid" ] && ! pid_of "$c" > /dev/null; then
        log "$c exited while waiting for $what" >&2
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# print_logs: the tail of every component log, for failures.
print_logs() {
  local f
  for f in "$LOGS"/*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f -----" >&2
    tail -n "${LOG_TAIL:-40}" "$f" >&2
  done
}

# node_ready_since EPOCH [NODE]: the node's (default $NODE_NAME) Ready condition is True and was reported at or
# after EPOCH.
node_ready_since() {
  local out status beat
  out=$(kc get node "${2:-$NODE_NAME}" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2> /dev/null) || return 1
  read -r status beat <<< "$out"
  [ "$status" = True ] || return 1
  [ "$(date -u -d "$beat" +%s)" -ge "$1" ]
}

kubelet_healthy() { curl -fsS --max-time 2 http://127.0.0.1:10248/healthz; }

# start_kubelet [EXTRA_FLAGS...]: the kubelet with the base flags written by up.sh plus EXTRA_FLAGS.
start_kubelet() {
  [ -f "$CLUSTER_DIR/kubelet/config.yaml" ] || die "no kubelet config in $CLUSTER_DIR: run scripts/cluster/up.sh"
  printf '%s\n' "$@" > "$STATE/kubelet-extra-flags"
  start_daemon kubelet "$K8S_BIN/kubelet" \
    --config="$CLUSTER_DIR/kubelet/config.yaml" \
    --kubeconfig="$CLUSTER_DIR/kubelet/kubeconfig" \
    --root-dir="$CLUSTER_DIR/kubelet/root" \
    --cert-dir="$CLUSTER_DIR/kubelet/pki" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP" \
    --v=2 "$@"
}

# wait_kubelet_ready SINCE_EPOCH: kubelet healthy and the node Ready with a heartbeat at or after SINCE_EPOCH.
wait_kubelet_ready() {
  wait_for "kubelet healthz" 60 kubelet_healthy || return 1
  wait_for "node $NODE_NAME Ready" 90 node_ready_since "$1"
}
