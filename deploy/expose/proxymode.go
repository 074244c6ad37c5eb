package expose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// The kube-proxy modes, as kube-proxy's --proxy-mode and its /proxyMode endpoint name them. "" in a
// KubeProxyConfiguration means the platform default: iptables on Linux.
const (
	ProxyIPTables    = "iptables"
	ProxyIPVS        = "ipvs"
	ProxyNFTables    = "nftables"
	ProxyKernelspace = "kernelspace" // Windows
	ProxyUnknown     = ""
)

// NFTablesLocalhostGate is the kube-proxy feature gate under which nftables mode serves node ports on 127.0.0.1
// too. Without it nftables (like IPVS) never does.
const NFTablesLocalhostGate = "KubeProxyNFTablesLocalhostNodePorts"

// MetricsPort is kube-proxy's default metrics port, which also serves /proxyMode and /configz.
const MetricsPort = 10249

// ProxyInfo is what is known about kube-proxy on the cluster.
type ProxyInfo struct {
	// Mode is one of the Proxy* constants; ProxyUnknown when it could not be found out (Reason says why).
	Mode string
	// Source says where Mode came from, e.g. "ConfigMap kube-system/kube-proxy" or "node node1 /configz".
	Source string
	// LocalhostNodePorts is kube-proxy's iptables.localhostNodePorts (nil: not known, kube-proxy's default true).
	LocalhostNodePorts *bool
	// NodePortAddresses is kube-proxy's nodePortAddresses (CIDRs or "primary"; empty: every local address).
	NodePortAddresses []string
	// FeatureGates are kube-proxy's featureGates, when known.
	FeatureGates map[string]bool
	// Reason explains an unknown Mode: what was tried and what failed.
	Reason string
}

// LocalhostNodePortsWork reports whether node ports answer on the node's 127.0.0.1 with this kube-proxy, and why
// (or why not). ok is false with an unknown mode too; known tells the two apart.
func (p ProxyInfo) LocalhostNodePortsWork() (ok, known bool, why string) {
	switch p.Mode {
	case ProxyUnknown:
		return false, false, "kube-proxy's mode could not be detected: " + p.Reason
	case ProxyIPVS:
		return false, true, "kube-proxy runs in ipvs mode (" + p.Source + "), which never serves node ports on 127.0.0.1"
	case ProxyNFTables:
		if p.FeatureGates[NFTablesLocalhostGate] {
			if !loopbackIncluded(p.NodePortAddresses) {
				return false, true, fmt.Sprintf("kube-proxy runs in nftables mode (%s) with nodePortAddresses %v, which leaves out 127.0.0.1", p.Source, p.NodePortAddresses)
			}
			return true, true, "kube-proxy runs in nftables mode (" + p.Source + ") with the " + NFTablesLocalhostGate + " gate on"
		}
		return false, true, "kube-proxy runs in nftables mode (" + p.Source + "), which serves node ports on 127.0.0.1 only with the " + NFTablesLocalhostGate + " feature gate"
	case ProxyKernelspace:
		return false, true, "kube-proxy runs in kernelspace mode (" + p.Source + ", Windows), which does not serve node ports on 127.0.0.1"
	case ProxyIPTables:
		if p.LocalhostNodePorts != nil && !*p.LocalhostNodePorts {
			return false, true, "kube-proxy runs in iptables mode (" + p.Source + ") with localhostNodePorts off"
		}
		if !loopbackIncluded(p.NodePortAddresses) {
			return false, true, fmt.Sprintf("kube-proxy runs in iptables mode (%s) with nodePortAddresses %v, which leaves out 127.0.0.1", p.Source, p.NodePortAddresses)
		}
		return true, true, "kube-proxy runs in iptables mode (" + p.Source + "), which serves node ports on 127.0.0.1"
	}
	return false, true, fmt.Sprintf("kube-proxy runs in %q mode (%s), which registry-kit does not know", p.Mode, p.Source)
}

// loopbackIncluded reports whether kube-proxy's nodePortAddresses let node ports answer on 127.0.0.1: an empty
// list means every local address; "primary" means the node's primary IPs only.
func loopbackIncluded(addrs []string) bool {
	if len(addrs) == 0 {
		return true
	}
	lo := net.ParseIP("127.0.0.1")
	for _, a := range addrs {
		if _, n, err := net.ParseCIDR(a); err == nil && n.Contains(lo) {
			return true
		}
	}
	return false
}

// kubeProxyConfig is the part of kube-proxy's KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) that
// decides whether node ports answer on loopback.
type kubeProxyConfig struct {
	Mode              string          `json:"mode"`
	NodePortAddresses []string        `json:"nodePortAddresses"`
	FeatureGates      map[string]bool `json:"featureGates"`
	IPTables          struct {
		LocalhostNodePorts *bool `json:"localhostNodePorts"`
	} `json:"iptables"`
}

func (c kubeProxyConfig) info(source string) ProxyInfo {
	mode := strings.ToLower(c.Mode)
	if mode == "" {
		mode = ProxyIPTables // the Linux default
	}
	return ProxyInfo{Mode: mode, Source: source, LocalhostNodePorts: c.IPTables.LocalhostNodePorts,
		NodePortAddresses: c.NodePortAddresses, FeatureGates: c.FeatureGates}
}

// ParseKubeProxyConfiguration reads a KubeProxyConfiguration (YAML or JSON), as kubeadm keeps it in the
// kube-proxy ConfigMap's config.conf.
func ParseKubeProxyConfiguration(data []byte, source string) (ProxyInfo, error) {
	var c kubeProxyConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return ProxyInfo{}, fmt.Errorf("parsing the KubeProxyConfiguration from %s: %w", source, err)
	}
	return c.info(source), nil
}

// parseConfigz reads kube-proxy's /configz answer: {"kubeproxy.config.k8s.io": {KubeProxyConfiguration}}.
func parseConfigz(data []byte, source string) (ProxyInfo, error) {
	var wrapped map[string]kubeProxyConfig
	if err := json.Unmarshal(data, &wrapped); err != nil {
		return ProxyInfo{}, fmt.Errorf("parsing kube-proxy's /configz from %s: %w", source, err)
	}
	c, ok := wrapped["kubeproxy.config.k8s.io"]
	if !ok {
		return ProxyInfo{}, fmt.Errorf("kube-proxy's /configz from %s has no kubeproxy.config.k8s.io section", source)
	}
	return c.info(source), nil
}

// NodeGetter fetches path from port on a node through the API server's node proxy
// (GET /api/v1/nodes/NODE:PORT/proxy/PATH).
type NodeGetter func(ctx context.Context, node string, port int, path string) ([]byte, error)

// APINodeGetter is the NodeGetter of a clientset.
func APINodeGetter(kube kubernetes.Interface) NodeGetter {
	return func(ctx context.Context, node string, port int, path string) ([]byte, error) {
		rc := kube.CoreV1().RESTClient()
		if v := reflect.ValueOf(rc); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			return nil, errors.New("no REST client (a fake clientset)")
		}
		return rc.Get().Resource("nodes").Name(fmt.Sprintf("%s:%d", node, port)).
			SubResource("proxy").Suffix(path).DoRaw(ctx)
	}
}

// kubeProxyConfigMap is where kubeadm (and tools copying it) keep kube-proxy's configuration.
const (
	kubeProxyNamespace = "kube-system"
	kubeProxyConfigMap = "kube-proxy"
	kubeProxyConfigKey = "config.conf"
)

// DetectProxyMode finds kube-proxy's mode: from the ConfigMap kube-system/kube-proxy when it exists, else from
// kube-proxy's /configz (then /proxyMode) on its metrics port of each node, through the API server's node proxy
// (which only works where kube-proxy's metrics listen on the node's IP, not on its default 127.0.0.1). get may be
// nil (APINodeGetter(kube)). It never fails: an unknown Mode comes with the Reason.
func DetectProxyMode(ctx context.Context, kube kubernetes.Interface, get NodeGetter) ProxyInfo {
	if get == nil {
		get = APINodeGetter(kube)
	}
	var tried []string
	cm, err := kube.CoreV1().ConfigMaps(kubeProxyNamespace).Get(ctx, kubeProxyConfigMap, metav1.GetOptions{})
	source := "ConfigMap " + kubeProxyNamespace + "/" + kubeProxyConfigMap
	switch {
	case err == nil && cm.Data[kubeProxyConfigKey] != "":
		info, perr := ParseKubeProxyConfiguration([]byte(cm.Data[kubeProxyConfigKey]), source)
		if perr == nil {
			return info
		}
		tried = append(tried, perr.Error())
	case err == nil:
		tried = append(tried, source+" has no "+kubeProxyConfigKey)
	case apierrors.IsNotFound(err):
		tried = append(tried, "no "+source)
	case apierrors.IsForbidden(err):
		tried = append(tried, "reading "+source+" is forbidden")
	default:
		tried = append(tried, fmt.Sprintf("reading %s: %v", source, err))
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		tried = append(tried, fmt.Sprintf("listing nodes: %v", shortAPIError(err)))
		return ProxyInfo{Reason: strings.Join(tried, "; ")}
	}
	names := make([]string, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	for _, node := range names {
		src := fmt.Sprintf("node %s kube-proxy :%d", node, MetricsPort)
		if b, err := get(ctx, node, MetricsPort, "configz"); err == nil {
			if info, err := parseConfigz(b, src+"/configz"); err == nil {
				return info
			}
		}
		b, err := get(ctx, node, MetricsPort, "proxyMode")
		if err == nil {
			mode := strings.ToLower(strings.TrimSpace(string(b)))
			if mode != "" && !strings.ContainsAny(mode, " <{") {
				return ProxyInfo{Mode: mode, Source: src + "/proxyMode"}
			}
			err = errors.New("unexpected answer")
		}
		tried = append(tried, fmt.Sprintf("%s/proxyMode through the API server's node proxy: %v", src, shortAPIError(err)))
		if len(tried) >= 3 {
			break // the same on every node, most likely (kube-proxy's metrics on 127.0.0.1, or no kube-proxy)
		}
	}
	if len(names) == 0 {
		tried = append(tried, "the cluster has no nodes")
	}
	return ProxyInfo{Reason: strings.Join(tried, "; ") +
		" (kube-proxy's metrics listen on 127.0.0.1 by default, out of the API server's reach; or the cluster runs a kube-proxy replacement)"}
}

// shortAPIError keeps an error message to one line without the response body an API error may quote.
func shortAPIError(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		s := se.Status()
		return fmt.Sprintf("%s (%d)", s.Reason, s.Code)
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
