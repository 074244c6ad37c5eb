package manifests

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestPlainHTTPWarnings: a registry reachable from other hosts over plain HTTP (NodePort, LoadBalancer, an Ingress
// without TLS) is warned about, typed (generate) or unstructured (a kustomize overlay for deploy); TLS on the
// server, or on the Ingress, and a ClusterIP Service are not.
func TestPlainHTTPWarnings(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // substrings, one per warning
	}{
		{name: "ClusterIP, no ingress", opts: Options{}},
		{name: "NodePort over plain HTTP", opts: Options{ServiceType: corev1.ServiceTypeNodePort, NodePort: 30500},
			want: []string{"service/registry serves plain HTTP on node port 30500: pods pull through each node's own loopback, but a client on another host"}},
		{name: "NodePort with TLS", opts: Options{ServiceType: corev1.ServiceTypeNodePort, NodePort: 30500, TLSSecretName: "tls"}},
		{name: "LoadBalancer over plain HTTP", opts: Options{ServiceType: corev1.ServiceTypeLoadBalancer},
			want: []string{"service/registry is a LoadBalancer serving plain HTTP"}},
		{name: "Ingress without TLS", opts: Options{Ingress: &Ingress{Host: "registry.example"}},
			want: []string{"ingress/registry has no TLS for registry.example: clients send the registry password unencrypted"}},
		{name: "Ingress with TLS", opts: Options{Ingress: &Ingress{Host: "registry.example", TLSSecretName: "tls"}}},
		{name: "NodePort and Ingress, both plain", opts: Options{ServiceType: corev1.ServiceTypeNodePort, Ingress: &Ingress{Host: "r.example"}},
			want: []string{"service/registry serves plain HTTP on its node port", "ingress/registry has no TLS for r.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Users, tc.opts.HTTPSecret, tc.opts.BcryptCost = []User{{Name: "u", Password: "p"}}, []byte("s"), 4
			set, err := Generate(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, form := range []struct {
				name string
				objs []runtime.Object
			}{{"typed", set.Objects()}, {"unstructured", toUnstructured(t, set.Objects())}} {
				got := PlainHTTPWarnings(form.objs)
				if len(got) != len(tc.want) {
					t.Fatalf("%s: warnings %q, want %d", form.name, got, len(tc.want))
				}
				for i, w := range tc.want {
					if !strings.Contains(got[i], w) {
						t.Errorf("%s: warning %q lacks %q", form.name, got[i], w)
					}
				}
			}
		})
	}
	if diff := cmp.Diff([]string(nil), PlainHTTPWarnings(nil)); diff != "" {
		t.Errorf("no objects (-want +got):\n%s", diff)
	}
}

func toUnstructured(t *testing.T, objs []runtime.Object) []runtime.Object {
	t.Helper()
	out := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}
