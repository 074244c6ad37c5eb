package nodetrust

import (
	"fmt"
	"path/filepath"
	"strings"
)

// NodeNameVar in a node path (--containerd-config, --containerd-certs-dir) is replaced by each node's name, for
// clusters whose nodes keep containerd's files in per-node places (the two-node test cluster does).
const NodeNameVar = "$(NODE_NAME)"

// mount is a host directory mounted into the agent's pod.
type mount struct{ pod, host string }

// splitTemplate splits a node path at its first NodeNameVar component: the host directory before it (what the
// pod mounts) and the rest. Without NodeNameVar, base says what to mount: the path itself (a directory) or its
// parent (a file).
func splitTemplate(p string, file bool) (hostRoot, rest string) {
	if i := strings.Index(p, NodeNameVar); i >= 0 {
		dir := filepath.Dir(p[:i+1])
		if strings.HasSuffix(p[:i], "/") {
			dir = filepath.Clean(p[:i])
		}
		return dir, strings.TrimPrefix(p, dir+"/")
	}
	if file {
		return filepath.Dir(p), filepath.Base(p)
	}
	return filepath.Clean(p), ""
}

// toHost maps a path inside the pod, after following symlinks (relative ones stay inside the mount), back to the
// node's path.
func (m mount) toHost(podPath string) (string, error) {
	real, err := filepath.EvalSymlinks(podPath)
	if err != nil {
		return "", err
	}
	if real != m.pod && !strings.HasPrefix(real, m.pod+"/") {
		return "", fmt.Errorf("%s leads out of the mounted node directory %s (an absolute symlink?)", podPath, m.host)
	}
	return filepath.Join(m.host, strings.TrimPrefix(real, m.pod)), nil
}

// parseMount reads POD=HOST.
func parseMount(s string) (mount, error) {
	pod, host, ok := strings.Cut(s, "=")
	if !ok || !filepath.IsAbs(pod) || !filepath.IsAbs(host) {
		return mount{}, fmt.Errorf("mount %q: want POD_PATH=HOST_PATH", s)
	}
	return mount{pod: filepath.Clean(pod), host: filepath.Clean(host)}, nil
}
