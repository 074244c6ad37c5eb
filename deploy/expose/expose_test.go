package expose

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestParseKubeProxyConfiguration(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want ProxyInfo
	}{
		{"kubeadm default (mode empty)", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"\"\n",
			ProxyInfo{Mode: ProxyIPTables, Source: "cm"}},
		{"ipvs", "kind: KubeProxyConfiguration\nmode: ipvs\n", ProxyInfo{Mode: ProxyIPVS, Source: "cm"}},
		{"nftables with the gate", "mode: nftables\nfeatureGates:\n  KubeProxyNFTablesLocalhostNodePorts: true\nnodePortAddresses: [127.0.0.0/8]\n",
			ProxyInfo{Mode: ProxyNFTables, Source: "cm", FeatureGates: map[string]bool{NFTablesLocalhostGate: true}, NodePortAddresses: []string{"127.0.0.0/8"}}},
		{"iptables without localhost node ports", "mode: IPTables\niptables:\n  localhostNodePorts: false\n",
			ProxyInfo{Mode: ProxyIPTables, Source: "cm", LocalhostNodePorts: ptr.To(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKubeProxyConfiguration([]byte(tt.conf), "cm")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if _, err := ParseKubeProxyConfiguration([]byte("mode: [1"), "cm"); err == nil || !strings.Contains(err.Error(), "cm") {
		t.Errorf("bad YAML: err = %v, want one naming the source", err)
	}
}

func TestLocalhostNodePortsWork(t *testing.T) {
	tests := []struct {
		name      string
		p         ProxyInfo
		ok, known bool
		why       string
	}{
		{"iptables default", ProxyInfo{Mode: ProxyIPTables, Source: "s"}, true, true, "iptables mode"},
		{"iptables localhostNodePorts off", ProxyInfo{Mode: ProxyIPTables, LocalhostNodePorts: ptr.To(false)}, false, true, "localhostNodePorts off"},
		{"iptables node IPs only", ProxyInfo{Mode: ProxyIPTables, NodePortAddresses: []string{"10.0.0.0/8"}}, false, true, "leaves out 127.0.0.1"},
		{"iptables primary", ProxyInfo{Mode: ProxyIPTables, NodePortAddresses: []string{"primary"}}, false, true, "leaves out 127.0.0.1"},
		{"iptables with loopback listed", ProxyInfo{Mode: ProxyIPTables, NodePortAddresses: []string{"127.0.0.0/8", "10.200.0.1/32"}}, true, true, "iptables mode"},
		{"ipvs", ProxyInfo{Mode: ProxyIPVS}, false, true, "ipvs mode"},
		{"nftables", ProxyInfo{Mode: ProxyNFTables}, false, true, NFTablesLocalhostGate},
		{"nftables with the gate", ProxyInfo{Mode: ProxyNFTables, FeatureGates: map[string]bool{NFTablesLocalhostGate: true}}, true, true, "gate on"},
		{"nftables with the gate but primary", ProxyInfo{Mode: ProxyNFTables, FeatureGates: map[string]bool{NFTablesLocalhostGate: true}, NodePortAddresses: []string{"primary"}}, false, true, "leaves out"},
		{"kernelspace", ProxyInfo{Mode: ProxyKernelspace}, false, true, "Windows"},
		{"unknown", ProxyInfo{Reason: "no ConfigMap"}, false, false, "could not be detected: no ConfigMap"},
		{"something new", ProxyInfo{Mode: "ebpf"}, false, true, `"ebpf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, known, why := tt.p.LocalhostNodePortsWork()
			if ok != tt.ok || known != tt.known || !strings.Contains(why, tt.why) {
				t.Errorf("= %v, %v, %q; want %v, %v, containing %q", ok, known, why, tt.ok, tt.known, tt.why)
			}
		})
	}
}

// TestChoose is the address choice table: kube-proxy mode x flags -> mode, with the reason.
func TestChoose(t *testing.T) {
	iptables := ProxyInfo{Mode: ProxyIPTables, Source: "ConfigMap kube-system/kube-proxy"}
	nft := ProxyInfo{Mode: ProxyNFTables, Source: "node n1"}
	ipvs := ProxyInfo{Mode: ProxyIPVS, Source: "node n1"}
	unknown := ProxyInfo{Reason: "no ConfigMap kube-system/kube-proxy"}
	tests := []struct {
		name       string
		in         Input
		want       Mode
		reason     string
		warning    string
		errIs      error
		errContain string
	}{
		{name: "auto iptables", in: Input{Proxy: iptables, ServiceType: "NodePort"}, want: NodePortLocalhost, reason: "iptables mode"},
		{name: "auto nftables", in: Input{Proxy: nft, ServiceType: "NodePort"}, want: NodeProxy, reason: "nftables mode"},
		{name: "auto ipvs", in: Input{Proxy: ipvs, ServiceType: "NodePort"}, want: NodeProxy, reason: "ipvs mode"},
		{name: "auto unknown", in: Input{Proxy: unknown, ServiceType: "NodePort"}, want: NodePortLocalhost, reason: "could not be detected", warning: "--expose node-proxy"},
		{name: "auto iptables without localhost node ports", in: Input{Proxy: ProxyInfo{Mode: ProxyIPTables, LocalhostNodePorts: ptr.To(false)}, ServiceType: "NodePort"}, want: NodeProxy, reason: "localhostNodePorts off"},
		{name: "auto tls secret", in: Input{Proxy: iptables, TLSSecret: true, ServiceType: "NodePort"}, want: TLS, reason: "--tls-secret"},
		{name: "auto ClusterIP", in: Input{Proxy: iptables, ServiceType: "ClusterIP"}, want: NodeProxy, reason: "ClusterIP"},
		{name: "nodeport-localhost on iptables", in: Input{Requested: NodePortLocalhost, Proxy: iptables, ServiceType: "NodePort"}, want: NodePortLocalhost, reason: "--expose"},
		{name: "nodeport-localhost on nftables refused", in: Input{Requested: NodePortLocalhost, Proxy: nft, ServiceType: "NodePort"}, errIs: ErrLocalhostNodePorts, errContain: "--force"},
		{name: "nodeport-localhost on ipvs refused", in: Input{Requested: NodePortLocalhost, Proxy: ipvs, ServiceType: "NodePort"}, errIs: ErrLocalhostNodePorts, errContain: "ipvs mode"},
		{name: "nodeport-localhost on nftables forced", in: Input{Requested: NodePortLocalhost, Proxy: nft, Force: true, ServiceType: "NodePort"}, want: NodePortLocalhost, reason: "--force", warning: "most likely fail"},
		{name: "nodeport-localhost unknown warns", in: Input{Requested: NodePortLocalhost, Proxy: unknown, ServiceType: "NodePort"}, want: NodePortLocalhost, warning: "--expose node-proxy"},
		{name: "nodeport-localhost ClusterIP", in: Input{Requested: NodePortLocalhost, Proxy: iptables, ServiceType: "ClusterIP"}, errContain: "ClusterIP"},
		{name: "node-proxy on iptables", in: Input{Requested: NodeProxy, Proxy: iptables, ServiceType: "NodePort"}, want: NodeProxy, reason: "--expose"},
		{name: "tls on nftables", in: Input{Requested: TLS, Proxy: nft, ServiceType: "NodePort"}, want: TLS, reason: "--expose"},
		{name: "tls ClusterIP warns", in: Input{Requested: TLS, ServiceType: "ClusterIP"}, want: TLS, warning: "--pull-address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.in)
			if tt.errContain != "" || tt.errIs != nil {
				if err == nil || !strings.Contains(err.Error(), tt.errContain) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
					t.Fatalf("err = %v, want one containing %q (is %v)", err, tt.errContain, tt.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("= %s (%q), want %s with a reason containing %q", got.Mode, got.Reason, tt.want, tt.reason)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(got.Warnings, "\n"), tt.warning) {
				t.Errorf("warnings %q lack %q", got.Warnings, tt.warning)
			}
			if tt.warning == "" && len(got.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", got.Warnings)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"", "auto", "nodeport-localhost", "node-proxy", "tls"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q): %v", s, err)
		}
	}
	if _, err := ParseMode("ingress"); err == nil || !strings.Contains(err.Error(), `--expose "ingress"`) {
		t.Errorf("ParseMode(ingress) = %v, want an error naming the flag", err)
	}
}

func TestDetectProxyMode(t *testing.T) {
	node := func(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-proxy"},
		Data: map[string]string{"config.conf": "kind: KubeProxyConfiguration\nmode: ipvs\n"}}
	configz := `{"kubeproxy.config.k8s.io":{"mode":"nftables","nodePortAddresses":["primary"],"iptables":{"localhostNodePorts":true}}}`
	tests := []struct {
		name    string
		objs    []any
		answers map[string]string // node/path -> body; missing: error
		want    ProxyInfo
		reason  []string
	}{
		{name: "ConfigMap wins", objs: []any{cm, node("n1")}, answers: map[string]string{"n1/configz": configz},
			want: ProxyInfo{Mode: ProxyIPVS, Source: "ConfigMap kube-system/kube-proxy"}},
		{name: "configz through the node proxy", objs: []any{node("n1")}, answers: map[string]string{"n1/configz": configz},
			want: ProxyInfo{Mode: ProxyNFTables, Source: "node n1 kube-proxy :10249/configz", NodePortAddresses: []string{"primary"}, LocalhostNodePorts: ptr.To(true)}},
		{name: "proxyMode when configz fails", objs: []any{node("n2"), node("n1")}, answers: map[string]string{"n1/proxyMode": "iptables\n"},
			want: ProxyInfo{Mode: ProxyIPTables, Source: "node n1 kube-proxy :10249/proxyMode"}},
		{name: "second node answers", objs: []any{node("n1"), node("n2")}, answers: map[string]string{"n2/proxyMode": "iptables"},
			want: ProxyInfo{Mode: ProxyIPTables, Source: "node n2 kube-proxy :10249/proxyMode"}},
		{name: "undetectable", objs: []any{node("n1")}, answers: map[string]string{"n1/proxyMode": "<html>"},
			reason: []string{"no ConfigMap kube-system/kube-proxy", "node n1 kube-proxy :10249/proxyMode", "unexpected answer", "127.0.0.1 by default"}},
		{name: "no nodes", reason: []string{"the cluster has no nodes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			for _, o := range tt.objs {
				switch v := o.(type) {
				case *corev1.Node:
					_, _ = cs.CoreV1().Nodes().Create(context.Background(), v, metav1.CreateOptions{})
				case *corev1.ConfigMap:
					_, _ = cs.CoreV1().ConfigMaps(v.Namespace).Create(context.Background(), v, metav1.CreateOptions{})
				}
			}
			get := func(_ context.Context, node string, port int, path string) ([]byte, error) {
				if port != MetricsPort {
					t.Errorf("port %d, want %d", port, MetricsPort)
				}
				if b, ok := tt.answers[node+"/"+path]; ok {
					return []byte(b), nil
				}
				return nil, errors.New("dial tcp: connection refused")
			}
			got := DetectProxyMode(context.Background(), cs, get)
			if len(tt.reason) > 0 {
				if got.Mode != ProxyUnknown {
					t.Fatalf("mode %q, want unknown", got.Mode)
				}
				for _, r := range tt.reason {
					if !strings.Contains(got.Reason, r) {
						t.Errorf("reason %q lacks %q", got.Reason, r)
					}
				}
				return
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
