#!/usr/bin/env bash
# Restarts only the kubelet of the running test cluster, with up.sh's base flags plus any extra flags, and waits
# until the node is Ready again with a fresh status from the new kubelet. For example, the credential-provider test:
#   scripts/cluster/kubelet.sh restart --image-credential-provider-config=F --image-credential-provider-bin-dir=D
# and `scripts/cluster/kubelet.sh restart` (no extras) to go back to the base flags.
# Usage: kubelet.sh restart [EXTRA_KUBELET_FLAGS...] | kubelet.sh flags   (prints the current extra flags)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

case ${1:-} in
  restart)
    shift
    [ "$(id -u)" = 0 ] || die "kubelet.sh must run as root"
    pid_of kube-apiserver > /dev/null || die "cluster in $CLUSTER_DIR is not running: run scripts/cluster/up.sh"
    start=$EPOCHREALTIME
    since=$(date -u +%s)
    stop_daemon kubelet 30
    if ! start_kubelet "$@" || ! wait_kubelet_ready "$since"; then
      echo "----- tail of $LOGS/kubelet.log (this start) -----" >&2
      awk '/^=== /{n=0} {buf[n++]=$0} END {for (i = (n > 60 ? n - 60 : 0); i < n; i++) print buf[i]}' "$LOGS/kubelet.log" >&2
      die "kubelet did not come back with flags: $*"
    fi
    log "kubelet restarted (extra flags: ${*:-none}) and node Ready in $(elapsed "$start")s"
    ;;
  flags) cat "$STATE/kubelet-extra-flags" 2> /dev/null ;;
  *) die "usage: kubelet.sh restart [EXTRA_KUBELET_FLAGS...] | kubelet.sh flags" ;;
esac
