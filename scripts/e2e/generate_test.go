//go:build e2e

package e2e

// Server-side dry-run of everything `registry-kit generate` and the kustomize overlays produce, against the real
// kube-apiserver of the local cluster (scripts/cluster/up.sh): each object goes through schema validation with
// fieldValidation=Strict, admission and defaulting, persisting nothing. The test namespace enforces the
// "restricted" Pod Security Standard, and a Pod made from each Deployment's template is dry-run created there, so
// a pod spec that breaks the standard is refused, not just warned about.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/registry-kit/registry-kit/manifests"
)

const dryRunFieldManager = "registry-kit-e2e-dry-run"

// restrictedNamespace is a fresh test namespace that enforces and warns on the restricted Pod Security Standard.
func restrictedNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns := newNamespace(t)
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted","pod-security.kubernetes.io/warn":"restricted"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("labelling namespace %s restricted: %v", ns, err)
	}
	return ns
}

// restFor returns the REST client and resource name of kind, and whether it is namespaced.
func restFor(t *testing.T, cs kubernetes.Interface, kind string) (rest.Interface, string, bool) {
	t.Helper()
	switch kind {
	case "Namespace":
		return cs.CoreV1().RESTClient(), "namespaces", false
	case "Secret":
		return cs.CoreV1().RESTClient(), "secrets", true
	case "PersistentVolumeClaim":
		return cs.CoreV1().RESTClient(), "persistentvolumeclaims", true
	case "Service":
		return cs.CoreV1().RESTClient(), "services", true
	case "Deployment":
		return cs.AppsV1().RESTClient(), "deployments", true
	case "Ingress":
		return cs.NetworkingV1().RESTClient(), "ingresses", true
	case "PodDisruptionBudget":
		return cs.PolicyV1().RESTClient(), "poddisruptionbudgets", true
	}
	t.Fatalf("no REST mapping for kind %s in this test", kind)
	return nil, "", false
}

// dryRunApply server-side applies u with dryRun=All and strict field validation, and returns the API server's
// warnings.
func dryRunApply(t *testing.T, cs kubernetes.Interface, u *unstructured.Unstructured) ([]string, error) {
	t.Helper()
	body, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	rc, res, namespaced := restFor(t, cs, u.GetKind())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := rc.Patch(types.ApplyPatchType).Resource(res).Name(u.GetName()).
		Param("fieldManager", dryRunFieldManager).Param("dryRun", metav1.DryRunAll).Param("fieldValidation", "Strict").
		Body(body)
	if namespaced {
		req = req.Namespace(u.GetNamespace())
	}
	result := req.Do(ctx)
	var warnings []string
	for _, w := range result.Warnings() {
		warnings = append(warnings, w.Text)
	}
	return warnings, result.Error()
}

// dryRunPod creates (dry-run) a Pod from a Deployment's template in ns, where the restricted standard is enforced.
func dryRunPod(t *testing.T, cs kubernetes.Interface, ns string, d *appsv1.Deployment) error {
	t.Helper()
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-dry-run", Namespace: ns, Labels: d.Spec.Template.Labels},
		Spec:       d.Spec.Template.Spec,
	}
	body, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").
		Param("dryRun", metav1.DryRunAll).Param("fieldValidation", "Strict").Body(body).Do(ctx).Error()
}

// nodePortInUse reports whether a Service in the cluster already holds port (a deploy test may run the real
// registry on the dev node port while this test runs).
func nodePortInUse(t *testing.T, cs kubernetes.Interface, port int64) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing services: %v", err)
	}
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			if int64(p.NodePort) == port {
				return true
			}
		}
	}
	return false
}

// checkDryRun dry-run applies objs (moved into ns) in order and dry-run creates a Pod from each Deployment.
func checkDryRun(t *testing.T, cs kubernetes.Interface, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		u = u.DeepCopy()
		if u.GetKind() == "Namespace" {
			u.SetName(ns)
		} else {
			u.SetNamespace(ns)
		}
		if u.GetKind() == "Service" {
			ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
			for _, p := range ports {
				pm := p.(map[string]any)
				if np, ok := pm["nodePort"].(int64); ok && nodePortInUse(t, cs, np) {
					t.Logf("node port %d is held by a running Service; dry-running %s without it", np, u.GetName())
					delete(pm, "nodePort")
				}
			}
			_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
		}
		warnings, err := dryRunApply(t, cs, u)
		ref := u.GetKind() + "/" + u.GetName()
		if err != nil {
			t.Errorf("server-side dry-run apply of %s refused: %v", ref, err)
			continue
		}
		for _, w := range warnings {
			t.Errorf("server-side dry-run apply of %s warned: %s", ref, w)
		}
		if u.GetKind() == "Deployment" {
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
				t.Fatal(err)
			}
			if err := dryRunPod(t, cs, ns, &d); err != nil {
				t.Errorf("a Pod from %s's template is refused in a restricted namespace: %v", ref, err)
			}
		}
	}
}

func toUnstructured(t *testing.T, objs []runtime.Object) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func TestGenerateServerDryRun(t *testing.T) {
	cs := kubeClient(t)
	ns := restrictedNamespace(t, cs)
	tests := []struct {
		name string
		opts manifests.Options
	}{
		{name: "defaults with generated admin", opts: manifests.Options{}},
		{name: "nodeport tls labels resources", opts: manifests.Options{
			Name:          "images",
			Image:         "127.0.0.1:5000/registry-kit:v1",
			ServiceType:   corev1.ServiceTypeNodePort,
			NodePort:      30599,
			StorageSize:   resource.MustParse("1Gi"),
			StorageClass:  ptr.To(""),
			TLSSecretName: "registry-tls",
			Labels:        map[string]string{"team": "platform"},
			Annotations:   map[string]string{"example.com/owner": "platform"},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
		}},
		{name: "rwx replicas existing claim", opts: manifests.Options{
			Name: "shared", ExistingClaim: "nfs", AccessMode: corev1.ReadWriteMany, Replicas: 3,
		}},
		{name: "ingress", opts: manifests.Options{
			Name:    "web",
			Ingress: &manifests.Ingress{Host: "registry.example.com", ClassName: ptr.To("nginx"), TLSSecretName: "web-tls"},
		}},
		{name: "s3 replicas in-cluster redis", opts: manifests.Options{
			Name: "scaled", Replicas: 3, Storage: manifests.StorageS3,
			S3: manifests.S3{Endpoint: "http://minio.storage.svc:9000", Insecure: true, ForcePathStyle: true, Bucket: "registry",
				AccessKey: []byte("dry-run-access"), SecretKey: []byte("dry-run-secret")},
			Redis: manifests.Redis{InCluster: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Namespace, o.Rand, o.BcryptCost = ns, rand.Reader, 4
			set, err := manifests.Generate(o)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			checkDryRun(t, cs, ns, toUnstructured(t, set.Objects()))
		})
	}
}

// TestGenerateDryRunCatchesViolations is the control: a pod spec that breaks the restricted standard is refused
// by the same checks, so the tests above can fail.
func TestGenerateDryRunCatchesViolations(t *testing.T) {
	cs := kubeClient(t)
	ns := restrictedNamespace(t, cs)
	set, err := manifests.Generate(manifests.Options{Namespace: ns, ExternalSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	d := set.Deployment.DeepCopy()
	d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	if err := dryRunPod(t, cs, ns, d); err == nil || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a pod allowing privilege escalation was not refused by Pod Security admission (err: %v)", err)
	}
	bad := toUnstructured(t, []runtime.Object{set.Service})[0]
	_ = unstructured.SetNestedField(bad.Object, "nope", "spec", "unknownField")
	bad.SetNamespace(ns)
	if _, err := dryRunApply(t, cs, bad); err == nil {
		t.Error("strict field validation accepted an unknown field")
	}
}

// manifestsDir is the repository's manifests directory, seen from this package.
const manifestsDir = "../../manifests"

// copyManifests copies manifests/base and manifests/overlays into a temporary directory, so files a user must
// provide (the prod overlay's secrets) can be added without touching the work tree.
func copyManifests(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, sub := range []string{"base", "overlays"} {
		root := filepath.Join(manifestsDir, sub)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(manifestsDir, path)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			target := filepath.Join(dst, rel)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o600)
		})
		if err != nil {
			t.Fatalf("copying %s: %v", root, err)
		}
	}
	return dst
}

func TestKustomizeOverlaysServerDryRun(t *testing.T) {
	cs := kubeClient(t)
	ns := restrictedNamespace(t, cs)
	dir := copyManifests(t)
	// The prod overlay reads secrets the user creates; make throwaway ones as a user would.
	set, err := manifests.Generate(manifests.Options{Rand: rand.Reader, BcryptCost: 4, OmitNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"htpasswd":    set.HtpasswdSecret.Data[manifests.HtpasswdKey],
		"http-secret": set.HTTPSecret.Data[manifests.HTTPSecretKey],
	} {
		for _, overlay := range []string{"prod", "scale-out"} {
			if err := os.WriteFile(filepath.Join(dir, "overlays", overlay, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"s3-access-key", "s3-secret-key"} {
		if err := os.WriteFile(filepath.Join(dir, "overlays", "scale-out", name), []byte("dry-run-"+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, kdir := range []string{"base", "overlays/dev", "overlays/prod", "overlays/scale-out"} {
		t.Run(kdir, func(t *testing.T) {
			rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, kdir))
			if err != nil {
				t.Fatalf("kustomize build %s: %v", kdir, err)
			}
			var objs []*unstructured.Unstructured
			for _, r := range rm.Resources() {
				// Through JSON, so numbers are int64 as in any object read from the API.
				b, err := r.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON(b); err != nil {
					t.Fatal(err)
				}
				objs = append(objs, u)
			}
			if len(objs) == 0 {
				t.Fatalf("kustomize build %s produced no objects", kdir)
			}
			checkDryRun(t, cs, ns, objs)
		})
	}
}
