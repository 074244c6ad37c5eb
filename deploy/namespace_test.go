package deploy

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// generatedNamespace is the Namespace object as the generator (or the kustomize base) produces it.
func generatedNamespace(name string) *unstructured.Unstructured {
	u := obj("v1", "Namespace", "", name)
	u.SetLabels(map[string]string{PodSecurityEnforceLabel: "restricted", labelManagedBy: managedByValue})
	return u
}

// TestClaimNamespaces: deploy applies a Namespace object only when the namespace does not exist (then with
// CreatedByAnnotation) or when deploy created it; an existing namespace, `default` included, is left out of the
// apply (never owned, never relabelled) with a warning naming the Pod Security label to set by hand.
func TestClaimNamespaces(t *testing.T) {
	labelled := owned(obj("v1", "Namespace", "", "labelled"), "kubectl-create")
	labelled.SetLabels(map[string]string{PodSecurityEnforceLabel: "restricted"})
	tests := []struct {
		name      string
		cluster   []runtime.Object
		ns        string
		wantApply bool
		wantWarn  []string // substrings of the one warning; nil: no warning
	}{
		{name: "absent: created with the annotation", ns: "docker-registry", wantApply: true},
		{name: "created by deploy: applied again", cluster: []runtime.Object{createdNamespace("docker-registry")}, ns: "docker-registry", wantApply: true},
		{name: "existing: left alone", cluster: []runtime.Object{owned(obj("v1", "Namespace", "", "shop"), "kubectl-create")}, ns: "shop",
			wantWarn: []string{`namespace "shop" existed before`, "undeploy never deletes it", "kubectl label namespace shop pod-security.kubernetes.io/enforce=restricted"}},
		{name: "default: left alone", cluster: []runtime.Object{obj("v1", "Namespace", "", "default")}, ns: "default",
			wantWarn: []string{`namespace "default" existed before`, "kubectl label namespace default pod-security.kubernetes.io/enforce=restricted"}},
		{name: "applied by an older registry-kit: left alone", cluster: []runtime.Object{owned(obj("v1", "Namespace", "", "old"), FieldManager)}, ns: "old",
			wantWarn: []string{`namespace "old" existed before`}},
		{name: "existing and already restricted: no label advice", cluster: []runtime.Object{labelled}, ns: "labelled",
			wantWarn: []string{`namespace "labelled" existed before`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := obj("v1", "Secret", tc.ns, "registry-htpasswd")
			in := []*unstructured.Unstructured{generatedNamespace(tc.ns), secret}
			out, warnings, err := claimNamespaces(context.Background(), Clients{Dynamic: fakeDynamic(tc.cluster...)}, in)
			if err != nil {
				t.Fatalf("claimNamespaces: %v", err)
			}
			want := []string{"secret/registry-htpasswd"}
			if tc.wantApply {
				want = []string{"namespace/" + tc.ns, "secret/registry-htpasswd"}
			}
			var got []string
			for _, u := range out {
				got = append(got, ref(u))
				if u.GetKind() == "Namespace" && !createdByUs(u) {
					t.Errorf("the applied Namespace lacks %s=%s: %v", CreatedByAnnotation, CreatedByValue, u.GetAnnotations())
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("objects to apply (-want +got):\n%s", diff)
			}
			if in[0].GetAnnotations() != nil {
				t.Errorf("claimNamespaces changed its input: %v", in[0].GetAnnotations())
			}
			if tc.wantWarn == nil {
				if len(warnings) != 0 {
					t.Errorf("warnings %q, want none", warnings)
				}
				return
			}
			if len(warnings) != 1 {
				t.Fatalf("warnings %q, want one", warnings)
			}
			for _, w := range tc.wantWarn {
				if !strings.Contains(warnings[0], w) {
					t.Errorf("warning %q lacks %q", warnings[0], w)
				}
			}
			if strings.Contains(tc.name, "already restricted") && strings.Contains(warnings[0], "kubectl label") {
				t.Errorf("warning advises a label the namespace already has: %q", warnings[0])
			}
		})
	}
}
