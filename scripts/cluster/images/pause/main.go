// Command pause is the pod sandbox ("infra") container of the local test cluster: it holds the pod's namespaces,
// reaps orphaned children and exits on SIGTERM or SIGINT. It replaces registry.k8s.io/pause, which cannot be pulled
// here; scripts/cluster/up.sh builds it into the image containerd uses as its sandbox_image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down on %v\n", sig)
			return
		}
		reap()
	}
}

// reap collects every exited child so that orphans re-parented to the pod's PID 1 do not linger as zombies.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
