package expose

import (
	"errors"
	"fmt"
	"strings"
)

// Mode is how the nodes' container runtime reaches the registry.
type Mode string

// The exposure modes of `registry-kit deploy --expose`.
const (
	// Auto lets Choose decide.
	Auto Mode = "auto"
	// NodePortLocalhost: pods pull from localhost:<node port>; kube-proxy answers on each node's loopback, where
	// containerd and CRI-O speak plain HTTP without configuration. Needs iptables mode with localhost node ports.
	NodePortLocalhost Mode = "nodeport-localhost"
	// NodeProxy: pods pull from localhost:<port> of a per-node proxy (a hostNetwork DaemonSet bound to
	// 127.0.0.1) that forwards to the registry's Service. Works with any kube-proxy mode or replacement.
	NodeProxy Mode = "node-proxy"
	// TLS: the registry serves HTTPS on an address every node reaches (node IP and node port, a LoadBalancer or
	// an ingress host); the nodes must trust its CA (deploy --configure-nodes).
	TLS Mode = "tls"
)

// Modes lists the values --expose accepts.
var Modes = []Mode{Auto, NodePortLocalhost, NodeProxy, TLS}

// ParseMode accepts a --expose value ("" means Auto).
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return Auto, nil
	}
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("--expose %q: want one of %s", s, strings.Join(names, ", "))
}

// ErrLocalhostNodePorts is returned (wrapped) when nodeport-localhost is asked for on a kube-proxy that does not
// serve node ports on loopback, without Force.
var ErrLocalhostNodePorts = errors.New("node ports do not answer on the nodes' loopback")

// Input is what the choice depends on.
type Input struct {
	// Requested is --expose (Auto or "" to choose).
	Requested Mode
	// Force allows nodeport-localhost where kube-proxy is known not to serve node ports on loopback.
	Force bool
	// Proxy is the detected kube-proxy.
	Proxy ProxyInfo
	// TLSSecret is true when the user gave the registry a certificate (--tls-secret).
	TLSSecret bool
	// ServiceType is the registry Service's type (NodePort, LoadBalancer, ClusterIP).
	ServiceType string
}

// Choice is the exposure mode and, for people, why.
type Choice struct {
	Mode     Mode
	Reason   string
	Warnings []string
}

// Choose picks the exposure mode. With an explicit mode it only checks that the mode can work (nodeport-localhost
// is refused where kube-proxy does not serve node ports on loopback, unless Force); with Auto:
//
//	--tls-secret given                         -> tls
//	ClusterIP Service (no node port)           -> node-proxy
//	kube-proxy serves node ports on 127.0.0.1  -> nodeport-localhost
//	it does not (ipvs, nftables, ...)          -> node-proxy
//	kube-proxy's mode unknown                  -> nodeport-localhost, with a warning naming node-proxy (deploy
//	                                              still checks the node port on 127.0.0.1 from this machine; not
//	                                              being allowed to read kube-proxy's mode must not need more rights)
func Choose(in Input) (Choice, error) {
	ok, known, why := in.Proxy.LocalhostNodePortsWork()
	noNodePort := in.ServiceType == "ClusterIP"
	switch in.Requested {
	case NodePortLocalhost:
		if noNodePort {
			return Choice{}, fmt.Errorf("--expose %s: needs a node port, and --service-type is ClusterIP", NodePortLocalhost)
		}
		switch {
		case ok:
			return Choice{Mode: NodePortLocalhost, Reason: "asked for with --expose; " + why}, nil
		case !known:
			return Choice{Mode: NodePortLocalhost, Reason: "asked for with --expose",
				Warnings: []string{why + "; if pods cannot pull from localhost, redeploy with --expose node-proxy"}}, nil
		case in.Force:
			return Choice{Mode: NodePortLocalhost, Reason: "asked for with --expose and --force",
				Warnings: []string{why + ": pods will most likely fail to pull from localhost (--force given)"}}, nil
		}
		return Choice{}, fmt.Errorf("--expose %s: %w: %s; use --expose node-proxy (or tls), or --force if you know better", NodePortLocalhost, ErrLocalhostNodePorts, why)
	case NodeProxy:
		return Choice{Mode: NodeProxy, Reason: "asked for with --expose"}, nil
	case TLS:
		if noNodePort {
			return Choice{Mode: TLS, Reason: "asked for with --expose",
				Warnings: []string{"the Service is ClusterIP: give the address the nodes reach it at (a LoadBalancer or ingress host) with --pull-address"}}, nil
		}
		return Choice{Mode: TLS, Reason: "asked for with --expose"}, nil
	case Auto, "":
	default:
		return Choice{}, fmt.Errorf("unknown exposure mode %q", in.Requested)
	}
	switch {
	case in.TLSSecret:
		return Choice{Mode: TLS, Reason: "--tls-secret given: the registry serves HTTPS"}, nil
	case noNodePort:
		return Choice{Mode: NodeProxy, Reason: "the Service is ClusterIP (no node port): a per-node proxy on 127.0.0.1 forwards to it"}, nil
	case ok:
		return Choice{Mode: NodePortLocalhost, Reason: why}, nil
	case known:
		return Choice{Mode: NodeProxy, Reason: why + ": a per-node proxy on 127.0.0.1 forwards to the Service instead"}, nil
	}
	return Choice{Mode: NodePortLocalhost, Reason: "the default; " + why,
		Warnings: []string{why + "; if pods cannot pull from localhost:<node port>, redeploy with --expose node-proxy (works with any kube-proxy mode)"}}, nil
}
