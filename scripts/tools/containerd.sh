#!/usr/bin/env bash
# Starts or stops a private containerd whose root, state and sockets all live under DIR (it does not touch the
# host's /var/lib/containerd or /run/containerd), listening only on the unix socket DIR/containerd.sock, without the
# CRI plugin. For `ctr -a DIR/containerd.sock ...`.
#
#   scripts/tools/containerd.sh start DIR   # prints CONTAINERD_ADDRESS=DIR/containerd.sock when ready
#   scripts/tools/containerd.sh stop DIR
#
# DIR should be short (unix socket paths are limited to 108 bytes), e.g. from `mktemp -d /tmp/rk-e2e-XXXX`.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/containerd.pid" ] && kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
    echo "containerd.sh: a containerd already runs for $dir" >&2
    exit 1
  fi
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  setsid containerd --config "$dir/config.toml" --log-level warn >"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$dir/containerd.pid"
  for _ in $(seq 1 300); do
    if ctr -a "$dir/containerd.sock" version >/dev/null 2>&1; then
      echo "CONTAINERD_ADDRESS=$dir/containerd.sock"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
      echo "containerd.sh: containerd exited; its log:" >&2
      tail -n 30 "$dir/containerd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "containerd.sh: containerd not ready after 30s; its log:" >&2
  tail -n 30 "$dir/containerd.log" >&2
  stop
  exit 1
}

stop() {
  dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
  [ -f "$dir/containerd.pid" ] || return 0
  local pid
  pid=$(cat "$dir/containerd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  fi
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -f "$dir/containerd.pid" "$dir/containerd.sock" "$dir/containerd.sock.ttrpc"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
