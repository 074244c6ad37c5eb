package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/deploy/expose"
	"github.com/registry-kit/registry-kit/deploy/nodeproxy"
)

// deployNodeFlags say how the nodes reach and trust the registry.
type deployNodeFlags struct {
	expose         string
	force          bool
	nodeProxyPort  int
	configureNodes bool
	rotateTLS      bool
	canary         bool
	paths          nodeTrustFlags
}

func (n *deployNodeFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&n.expose, "expose", string(expose.Auto), "how the nodes pull: auto, nodeport-localhost (localhost:<node port>; needs kube-proxy in iptables mode), "+
		"node-proxy (a per-node proxy on 127.0.0.1, any kube-proxy mode) or tls (HTTPS on a node IP and the node port, with a generated CA unless --tls-secret)")
	f.BoolVar(&n.force, "force", false, "use --expose nodeport-localhost even where kube-proxy is known not to serve node ports on loopback")
	f.IntVar(&n.nodeProxyPort, "node-proxy-port", nodeproxy.DefaultPort, "port of the node proxy on each node's 127.0.0.1 (--expose node-proxy)")
	f.BoolVar(&n.configureNodes, "configure-nodes", false, "run a DaemonSet that makes every node's containerd trust the pull address (certs.d hosts.toml + CA), for addresses that are not the nodes' loopback")
	f.BoolVar(&n.rotateTLS, "rotate-tls", false, "replace the generated CA and certificate (--expose tls) with new ones (the nodes need --configure-nodes again)")
	f.BoolVar(&n.canary, "canary", false, "after deploy, make every node pull from the registry once (a pod per node) and report per node, with the fix for each failure")
	n.paths.addFlags(cmd)
}

func (n *deployNodeFlags) toOptions() (deploy.NodeOptions, error) {
	mode, err := expose.ParseMode(n.expose)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if n.nodeProxyPort < 1 || n.nodeProxyPort > 65535 {
		errs = append(errs, fmt.Errorf("--node-proxy-port %d: want 1-65535", n.nodeProxyPort))
	}
	if n.force && mode != expose.NodePortLocalhost {
		errs = append(errs, errors.New("--force: only applies with --expose nodeport-localhost"))
	}
	return deploy.NodeOptions{Expose: mode, Force: n.force, NodeProxyPort: n.nodeProxyPort, ConfigureNodes: n.configureNodes,
		ContainerdConfig: n.paths.containerdConfig, CertsDir: n.paths.certsDir, RotateTLS: n.rotateTLS}, errors.Join(errs...)
}
