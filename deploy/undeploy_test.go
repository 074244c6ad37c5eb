package deploy

import (
	"bytes"
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func owned(u *unstructured.Unstructured, manager string) *unstructured.Unstructured {
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationApply}})
	return u
}

func fakeDynamic(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	lists := map[schema.GroupVersionResource]string{namespaceResource: "NamespaceList", pvcResource: "PersistentVolumeClaimList"}
	for _, gvr := range undeployKinds {
		lists[gvr] = "List"
	}
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, objs...)
}

// createdNamespace is a Namespace as deploy creates it: applied by registry-kit, with CreatedByAnnotation.
func createdNamespace(name string) *unstructured.Unstructured {
	u := owned(obj("v1", "Namespace", "", name), FieldManager)
	u.SetAnnotations(map[string]string{CreatedByAnnotation: CreatedByValue})
	return u
}

func TestUndeploy(t *testing.T) {
	objects := func() []runtime.Object {
		return []runtime.Object{
			createdNamespace("docker-registry"),
			owned(obj("apps/v1", "Deployment", "docker-registry", "registry"), FieldManager),
			owned(obj("v1", "Service", "docker-registry", "registry"), FieldManager),
			owned(obj("v1", "Secret", "docker-registry", "registry-htpasswd"), FieldManager),
			owned(obj("v1", "PersistentVolumeClaim", "docker-registry", "registry"), FieldManager),
			// Not ours: made by hand, or applied by another tool.
			owned(obj("v1", "Secret", "docker-registry", "hand-made"), "kubectl-client-side-apply"),
			owned(obj("v1", "ConfigMap", "docker-registry", "other"), "helm"),
		}
	}
	tests := []struct {
		name        string
		deleteData  bool
		wantDeleted []string
		wantKept    []string
		wantLeft    []string // objects still in the (fake) cluster
	}{
		{
			name:        "keeps the claim and the namespace",
			wantDeleted: []string{"deployment.apps/registry", "secret/registry-htpasswd", "service/registry"},
			wantKept:    []string{"namespace/docker-registry kept (a persistentvolumeclaim is left in it)", "persistentvolumeclaim/registry kept (holds the registry's images; --delete-data deletes it)"},
			wantLeft:    []string{"configmaps/other", "namespaces/docker-registry", "persistentvolumeclaims/registry", "secrets/hand-made"},
		},
		{
			name:        "delete data",
			deleteData:  true,
			wantDeleted: []string{"deployment.apps/registry", "namespace/docker-registry", "persistentvolumeclaim/registry", "secret/registry-htpasswd", "service/registry"},
			wantLeft:    []string{"configmaps/other", "secrets/hand-made"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dyn := fakeDynamic(objects()...)
			var progress bytes.Buffer
			res, err := Undeploy(context.Background(), Clients{Dynamic: dyn}, UndeployOptions{Namespace: "docker-registry", DeleteData: tc.deleteData, Progress: &progress})
			if err != nil {
				t.Fatalf("Undeploy: %v", err)
			}
			sort.Strings(res.Deleted)
			sort.Strings(res.Kept)
			if diff := cmp.Diff(tc.wantDeleted, res.Deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantKept, res.Kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			var left []string
			for _, gvr := range append([]schema.GroupVersionResource{namespaceResource, pvcResource}, undeployKinds...) {
				ri := dyn.Resource(gvr)
				var list *unstructured.UnstructuredList
				if gvr == namespaceResource {
					list, err = ri.List(context.Background(), metav1.ListOptions{})
				} else {
					list, err = ri.Namespace("docker-registry").List(context.Background(), metav1.ListOptions{})
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range list.Items {
					left = append(left, gvr.Resource+"/"+u.GetName())
				}
			}
			sort.Strings(left)
			if diff := cmp.Diff(tc.wantLeft, left); diff != "" {
				t.Errorf("left in the cluster (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUndeployKeepsForeignNamespace: a namespace that existed before deploy, even one an older registry-kit applied
// (and labelled), is never deleted, not even with --delete-data and no claim left; what deploy applied in it is.
func TestUndeployKeepsForeignNamespace(t *testing.T) {
	tests := []struct {
		name string
		ns   *unstructured.Unstructured
	}{
		{"made by hand", owned(obj("v1", "Namespace", "", "shop"), "kubectl-create")},
		{"applied by an older registry-kit", owned(obj("v1", "Namespace", "", "shop"), FieldManager)},
		{"annotation with another value", func() *unstructured.Unstructured {
			u := owned(obj("v1", "Namespace", "", "shop"), FieldManager)
			u.SetAnnotations(map[string]string{CreatedByAnnotation: "someone-else"})
			return u
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dyn := fakeDynamic(tc.ns,
				owned(obj("apps/v1", "Deployment", "shop", "registry"), FieldManager),
				owned(obj("v1", "ConfigMap", "shop", "app-config"), "kubectl-create"))
			res, err := Undeploy(context.Background(), Clients{Dynamic: dyn}, UndeployOptions{Namespace: "shop", DeleteData: true})
			if err != nil {
				t.Fatalf("Undeploy: %v", err)
			}
			if diff := cmp.Diff([]string{"deployment.apps/registry"}, res.Deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"namespace/shop kept (registry-kit deploy did not create it)"}, res.Kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if _, err := dyn.Resource(namespaceResource).Get(context.Background(), "shop", metav1.GetOptions{}); err != nil {
				t.Errorf("namespace shop is gone: %v", err)
			}
			if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("shop").Get(context.Background(), "app-config", metav1.GetOptions{}); err != nil {
				t.Errorf("configmap shop/app-config is gone: %v", err)
			}
		})
	}
}
