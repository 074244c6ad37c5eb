//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/deploy"
)

// TestDeployExistingNamespace: deploy into a namespace that existed before (with an app's ConfigMap in it) neither
// applies nor relabels the namespace and says which Pod Security label to set; undeploy --delete-data removes the
// registry but keeps the namespace, its labels and the ConfigMap. `default` is left alone the same way (server dry
// run only: the shared cluster's default namespace is not written to). A namespace deploy created is still deleted.
func TestDeployExistingNamespace(t *testing.T) {
	cs := kubeClient(t)
	ctx := context.Background()

	t.Run("existing namespace survives undeploy", func(t *testing.T) {
		ns := newNamespace(t)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config"}, Data: map[string]string{"k": "v"}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		before := namespaceState(t, cs, ns)

		r := depRun(t, "", "deploy", "-n", ns, "--wait=false", "--node-port", "0", "--storage-class", "e2e-no-such-class")
		if r.err != nil {
			t.Fatalf("deploy -n %s: %v\n%s", ns, r.err, depRedact(r.out))
		}
		for _, want := range []string{`Warning: namespace "` + ns + `" existed before and was not created by registry-kit`,
			"kubectl label namespace " + ns + " pod-security.kubernetes.io/enforce=restricted", "deployment.apps/registry created",
			// The default NodePort serves plain HTTP: credentials from other hosts would cross the network in clear.
			"Warning: service/registry serves plain HTTP on"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("deploy output lacks %q:\n%s", want, depRedact(r.out))
			}
		}
		if strings.Contains(r.out, "namespace/"+ns) {
			t.Errorf("deploy applied the existing namespace:\n%s", depRedact(r.out))
		}
		if diff := cmp.Diff(before, namespaceState(t, cs, ns)); diff != "" {
			t.Errorf("deploy changed the existing namespace (-before +after):\n%s", diff)
		}

		r = depRun(t, "", "undeploy", "-n", ns, "--delete-data")
		if r.err != nil {
			t.Fatalf("undeploy -n %s --delete-data: %v\n%s", ns, r.err, r.out)
		}
		for _, want := range []string{"deployment.apps/registry deleted", "persistentvolumeclaim/registry deleted",
			"namespace/" + ns + " kept (registry-kit deploy did not create it)"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("undeploy output lacks %q:\n%s", want, r.out)
			}
		}
		if diff := cmp.Diff(before, namespaceState(t, cs, ns)); diff != "" {
			t.Errorf("undeploy changed the existing namespace (-before +after):\n%s", diff)
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("the app's ConfigMap is gone after undeploy: %v", err)
		}
	})

	t.Run("default is never relabelled", func(t *testing.T) {
		before := namespaceState(t, cs, "default")
		r := depRun(t, "", "deploy", "-n", "default", "--dry-run=server", "-o", "yaml", "--node-port", "0")
		if r.err != nil {
			t.Fatalf("deploy -n default --dry-run=server: %v\n%s", r.err, depRedact(r.out))
		}
		if strings.Contains(r.out, "kind: Namespace") {
			t.Errorf("the dry run would apply namespace default:\n%s", depRedact(r.out))
		}
		if !strings.Contains(r.out, "kubectl label namespace default pod-security.kubernetes.io/enforce=restricted") {
			t.Errorf("deploy -n default does not say which label to set:\n%s", depRedact(r.out))
		}
		if diff := cmp.Diff(before, namespaceState(t, cs, "default")); diff != "" {
			t.Errorf("namespace default changed (-before +after):\n%s", diff)
		}
	})

	t.Run("the Namespace of a -k overlay is left out for an existing namespace", func(t *testing.T) {
		ns := newNamespace(t)
		before := namespaceState(t, cs, ns)
		dir := t.TempDir()
		base, err := filepath.Rel(dir, filepath.Join(repoRoot, "manifests", "base"))
		if err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n- %s\n", ns, base)
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, dry := range []string{"client", "server"} {
			r := depRun(t, "", "deploy", "-k", dir, "--dry-run="+dry, "-o", "yaml")
			if r.err != nil {
				t.Fatalf("deploy -k --dry-run=%s: %v\n%s", dry, r.err, depRedact(r.out))
			}
			if strings.Contains(r.out, "kind: Namespace") || !strings.Contains(r.out, `Warning: namespace "`+ns+`" existed before`) {
				t.Errorf("deploy -k --dry-run=%s into an existing namespace: want no Namespace object and a warning:\n%s", dry, depRedact(r.out))
			}
		}
		if diff := cmp.Diff(before, namespaceState(t, cs, ns)); diff != "" {
			t.Errorf("the namespace changed (-before +after):\n%s", diff)
		}
	})

	t.Run("a namespace deploy created is deleted", func(t *testing.T) {
		ns := depNamespace(t, cs, "e2e-rk-created-ns")
		r := depRun(t, "", "deploy", "-n", ns, "--wait=false", "--node-port", "0", "--storage-class", "e2e-no-such-class")
		if r.err != nil {
			t.Fatalf("deploy -n %s: %v\n%s", ns, r.err, depRedact(r.out))
		}
		if !strings.Contains(r.out, "namespace/"+ns+" created") {
			t.Errorf("deploy did not create the namespace:\n%s", depRedact(r.out))
		}
		got := namespaceState(t, cs, ns)
		if got.Annotations[deploy.CreatedByAnnotation] != deploy.CreatedByValue || got.Labels[deploy.PodSecurityEnforceLabel] != "restricted" {
			t.Errorf("namespace deploy created has annotations %v and labels %v, want %s=%s and %s=restricted",
				got.Annotations, got.Labels, deploy.CreatedByAnnotation, deploy.CreatedByValue, deploy.PodSecurityEnforceLabel)
		}
		r = depRun(t, "", "undeploy", "-n", ns, "--delete-data")
		if r.err != nil || !strings.Contains(r.out, "namespace/"+ns+" deleted") {
			t.Fatalf("undeploy -n %s --delete-data: %v\n%s", ns, r.err, r.out)
		}
		depWaitGone(t, "namespace "+ns, func(ctx context.Context) error {
			_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return err
		})
	})
}

// nsState is what deploy and undeploy must not change on a namespace they did not create.
type nsState struct {
	Labels, Annotations map[string]string
	Managers            []string
	Terminating         bool
}

func namespaceState(t *testing.T, cs kubernetes.Interface, name string) nsState {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting namespace %s: %v", name, err)
	}
	st := nsState{Labels: ns.Labels, Annotations: ns.Annotations, Terminating: ns.DeletionTimestamp != nil}
	for _, mf := range ns.ManagedFields {
		st.Managers = append(st.Managers, mf.Manager+"/"+string(mf.Operation))
	}
	return st
}
