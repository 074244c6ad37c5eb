//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployKustomizeOverlay: `deploy -k` applies an overlay built on the checked-in dev overlay (its example
// credentials, fixed Secret names), waits until it serves, and a second run changes nothing.
func TestDeployKustomizeOverlay(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	ns := depNamespace(t, cs, "e2e-rk-kustomize")
	class := depUniqueName("e2e-rk-pv")
	depHostPathPV(t, cs, class, ns, "registry")
	port := depFreeNodePort(t, cs)

	dir := t.TempDir()
	dev, err := filepath.Rel(dir, filepath.Join(repoRoot, "manifests", "overlays", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(image, ":")
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
- %s
images:
- name: registry-kit
  newName: %s
  newTag: %s
patches:
- target: {kind: Service, name: registry}
  patch: |-
    - op: replace
      path: /spec/ports/0/nodePort
      value: %d
- target: {kind: PersistentVolumeClaim, name: registry}
  patch: |-
    - op: add
      path: /spec/storageClassName
      value: %s
`, ns, dev, name, tag, port, class)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}

	first := depRun(t, "", "deploy", "-k", dir, "--timeout", "3m")
	if first.err != nil {
		t.Fatalf("deploy -k: %v\n%s", first.err, depRedact(first.out))
	}
	t.Logf("deploy -k from scratch to serving: %s", first.elapsed.Round(100*1e6))
	if prefix := depField(first.out, "Image prefix for pods:"); !strings.HasSuffix(prefix, fmt.Sprintf(":%d/", port)) {
		t.Errorf("image prefix %q is not on node port %d:\n%s", prefix, port, depRedact(first.out))
	}
	for _, want := range []string{"namespace/" + ns + " created", "secret/registry-htpasswd created", "deployment.apps/registry created"} {
		if !strings.Contains(first.out, want) {
			t.Errorf("deploy -k output lacks %q:\n%s", want, depRedact(first.out))
		}
	}
	if depPasswordLine.MatchString(first.out) {
		t.Errorf("deploy -k generated a password although the overlay brings its htpasswd Secret")
	}
	// The dev overlay's example user can push.
	push := depField(first.out, "Push from this machine to:")
	pushTestApp(t, push, "dev", "dev-example-password", "e2e/kustomize")

	second := depRun(t, "", "deploy", "-k", dir, "--timeout", "1m")
	if second.err != nil {
		t.Fatalf("second deploy -k: %v\n%s", second.err, depRedact(second.out))
	}
	for _, a := range regexp.MustCompile(`(?m)^\S+/\S+ (created|configured|unchanged)$`).FindAllStringSubmatch(second.out, -1) {
		if a[1] != "unchanged" {
			t.Errorf("second deploy -k: %q, want unchanged", a[0])
		}
	}
}
