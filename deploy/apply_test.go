package deploy

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestSortForApply(t *testing.T) {
	in := []*unstructured.Unstructured{
		obj("networking.k8s.io/v1", "Ingress", "ns", "registry"),
		obj("apps/v1", "Deployment", "ns", "registry"),
		obj("v1", "Service", "ns", "registry"),
		obj("v1", "Secret", "ns", "registry-htpasswd"),
		obj("v1", "PersistentVolumeClaim", "ns", "registry"),
		obj("v1", "Namespace", "", "ns"),
		obj("v1", "Secret", "ns", "registry-http-secret"),
	}
	var got []string
	for _, u := range sortForApply(in) {
		got = append(got, ref(u))
	}
	want := []string{"namespace/ns", "secret/registry-htpasswd", "secret/registry-http-secret", "persistentvolumeclaim/registry",
		"service/registry", "deployment.apps/registry", "ingress.networking.k8s.io/registry"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apply order (-want +got):\n%s", diff)
	}
}

func TestActionFor(t *testing.T) {
	live := obj("v1", "Service", "ns", "registry")
	live.SetResourceVersion("42")
	live.SetUID("u")
	live.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply}})
	_ = unstructured.SetNestedField(live.Object, "NodePort", "spec", "type")
	_ = unstructured.SetNestedField(live.Object, "10.0.0.7", "spec", "clusterIP")
	_ = unstructured.SetNestedSlice(live.Object, []any{map[string]any{"port": int64(5000), "nodePort": int64(30500)}}, "spec", "ports")

	same := obj("v1", "Service", "ns", "registry")
	_ = unstructured.SetNestedField(same.Object, "NodePort", "spec", "type")
	_ = unstructured.SetNestedSlice(same.Object, []any{map[string]any{"port": 5000.0, "nodePort": int64(30500)}}, "spec", "ports")

	changed := same.DeepCopy()
	_ = unstructured.SetNestedSlice(changed.Object, []any{map[string]any{"port": int64(5000), "nodePort": int64(30501)}}, "spec", "ports")

	tests := []struct {
		name     string
		existing *unstructured.Unstructured
		want     *unstructured.Unstructured
		action   Action
	}{
		{"absent", nil, same, Created},
		{"live has server defaults on top", live, same, Unchanged},
		{"a field differs", live, changed, Configured},
		{"identical apart from server metadata", live, live.DeepCopy(), Unchanged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := actionFor(tc.existing, tc.want); got != tc.action {
				t.Errorf("actionFor = %s, want %s", got, tc.action)
			}
		})
	}
}

func TestSameObjectSeesNewOwner(t *testing.T) {
	a := obj("v1", "Secret", "ns", "s")
	a.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate}})
	b := a.DeepCopy()
	b.SetManagedFields(append(b.GetManagedFields(), metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply}))
	if sameObject(a, b) {
		t.Error("sameObject ignores a new field owner: deploy would skip taking ownership, and undeploy would not find the object")
	}
	c := a.DeepCopy()
	c.SetResourceVersion("9")
	if !sameObject(a, c) {
		t.Error("sameObject compares resourceVersion")
	}
	// The deployment controller owning new status fields (pods became ready during the deploy) changes nothing.
	d := a.DeepCopy()
	d.SetManagedFields(append(d.GetManagedFields(), metav1.ManagedFieldsEntry{Manager: "kube-controller-manager",
		Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:readyReplicas":{}}}`)}}))
	if !sameObject(a, d) {
		t.Error("sameObject compares the owners of the status subresource")
	}
}

func TestParseDryRun(t *testing.T) {
	tests := []struct {
		in      string
		want    DryRun
		wantErr bool
	}{
		{"", DryRunNone, false}, {"none", DryRunNone, false}, {"client", DryRunClient, false}, {"server", DryRunServer, false},
		{"true", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDryRun(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseDryRun(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/version", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name     string
		err      error
		sentinel error
		contains string
	}{
		{"forbidden", apierrors.NewForbidden(gr, "x", errors.New("no")), ErrForbidden, `cannot get secrets "x" in namespace "ns"`},
		{"connection refused", refused, ErrUnreachable, "is the cluster running"},
		{"other", apierrors.NewNotFound(gr, "x"), nil, "getting secrets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := explain(tc.err, "get", `secrets "x" in namespace "ns"`)
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("explain(%v) does not wrap %v", tc.err, tc.sentinel)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("explain dropped the original error")
			}
			if got := err.Error(); !contains(got, tc.contains) {
				t.Errorf("explain = %q, want it to contain %q", got, tc.contains)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
