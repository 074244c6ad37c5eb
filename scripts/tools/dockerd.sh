#!/usr/bin/env bash
# Starts or stops a private Docker engine (Debian docker.io) whose every path lives under DIR and which listens only
# on the unix socket DIR/docker.sock: it does not touch the host's /var/lib/docker, /run/docker or iptables, and
# several can run side by side.
#
#   scripts/tools/dockerd.sh start DIR [extra dockerd flags...]   # prints DOCKER_HOST=unix://DIR/docker.sock when ready
#   scripts/tools/dockerd.sh stop DIR                              # removes its containers, stops it, unmounts leftovers
#
# The engine runs with --iptables=false and no default bridge (--bridge=none); a test that needs `docker run -p`
# creates a user-defined bridge network, reached through docker-proxy (the userland proxy) on 127.0.0.1.
# DIR should be short (unix socket paths are limited to 108 bytes), e.g. from `mktemp -d /tmp/rk-e2e-XXXX`.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR [dockerd flags...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -S "$dir/docker.sock" ] && [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
    echo "dockerd.sh: a dockerd already runs for $dir" >&2
    exit 1
  fi
  # setsid: its own session and process group, so stop can end dockerd and the containerd it spawns together.
  setsid dockerd \
    --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" --iptables=false --ip-masq=false --bridge=none \
    --storage-driver=overlay2 --log-level=warn "$@" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.launcher.pid"
  for _ in $(seq 1 300); do
    if DOCKER_HOST="unix://$dir/docker.sock" docker version >/dev/null 2>&1; then
      echo "DOCKER_HOST=unix://$dir/docker.sock"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/dockerd.launcher.pid")" 2>/dev/null; then
      echo "dockerd.sh: dockerd exited; its log:" >&2
      tail -n 30 "$dir/dockerd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "dockerd.sh: dockerd not ready after 30s; its log:" >&2
  tail -n 30 "$dir/dockerd.log" >&2
  stop
  exit 1
}

stop() {
  dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
  local pid=""
  [ -f "$dir/dockerd.pid" ] && pid=$(cat "$dir/dockerd.pid")
  [ -n "$pid" ] || { [ -f "$dir/dockerd.launcher.pid" ] && pid=$(cat "$dir/dockerd.launcher.pid"); }
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # Containers' shims live outside dockerd's process group: remove the containers first.
    local ids
    ids=$(DOCKER_HOST="unix://$dir/docker.sock" timeout 20 docker ps -aq 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      DOCKER_HOST="unix://$dir/docker.sock" timeout 30 docker rm -f $ids >/dev/null 2>&1 || true
    fi
    local nets
    nets=$(DOCKER_HOST="unix://$dir/docker.sock" timeout 20 docker network ls -q --filter type=custom 2>/dev/null || true)
    if [ -n "$nets" ]; then
      # shellcheck disable=SC2086
      DOCKER_HOST="unix://$dir/docker.sock" timeout 20 docker network rm $nets >/dev/null 2>&1 || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # Overlay and shm mounts a killed engine leaves behind.
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -f "$dir/docker.sock"
}

case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  *) usage ;;
esac
