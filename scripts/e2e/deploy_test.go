//go:build e2e

package e2e

// End-to-end tests of `registry-kit deploy` and `undeploy` on the local cluster (scripts/cluster/up.sh): the
// registry-kit image is built offline from the binary under test and imported into the node's containerd, the
// claim binds to a hostPath PersistentVolume the test makes (the test cluster has no provisioner), and pods in
// other namespaces pull what the host pushed, through the printed image prefix and a pull secret.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/internal/image"
)

var (
	rkImageOnce sync.Once
	rkImageRef  string
	rkImageErr  error
)

// registryKitImage builds the registry-kit image of the binary under test the way make image does (internal/image:
// in process, no Docker engine; linux/amd64 only, the node's platform), imports its OCI archive into the node's
// containerd, and returns its reference. It is tagged registry-kit:dev (the generator's default) and
// registry-kit:e2e-<digest>, which the tests deploy so they run exactly this binary.
func registryKitImage(t testing.TB) string {
	t.Helper()
	sock := clusterEnv(t).get(t, "CONTAINERD_SOCK")
	ctr := needTool(t, "ctr")
	rkImageOnce.Do(func() {
		rkImageRef, rkImageErr = buildRegistryKitImage(binary(t), ctr, sock)
		// A second node (up.sh --nodes 2) runs registry-kit's DaemonSets too.
		if sock2 := clusterEnv(t)["CLUSTER_NODE2_CONTAINERD_SOCK"]; rkImageErr == nil && sock2 != "" {
			_, rkImageErr = buildRegistryKitImage(binary(t), ctr, sock2)
		}
	})
	if rkImageErr != nil {
		t.Fatalf("building the registry-kit image: %v", rkImageErr)
	}
	return rkImageRef
}

func buildRegistryKitImage(bin, ctr, sock string) (string, error) {
	idx, err := image.Build(image.Options{
		Binaries:     []image.Binary{{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Path: bin}},
		CABundlePath: hostCABundle,
		Version:      "e2e",
	})
	if err != nil {
		return "", err
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	unique := "registry-kit:e2e-" + d.Hex[:12]
	return unique, importArchive(ctr, sock, idx, unique, "registry-kit:dev")
}

// importArchive writes idx as the OCI archive make image writes and imports it into the node's containerd
// (namespace k8s.io) as names[0], tagged with the other names too.
func importArchive(ctr, sock string, idx v1.ImageIndex, names ...string) error {
	dir, err := os.MkdirTemp("", "registry-kit-node-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	layoutDir, archive := filepath.Join(dir, "oci"), filepath.Join(dir, "image.tar")
	if err := image.WriteLayout(layoutDir, idx, names[0]); err != nil {
		return err
	}
	if err := image.WriteArchive(layoutDir, archive, time.Unix(0, 0)); err != nil {
		return err
	}
	if out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import: %v: %s", err, out)
	}
	full := func(n string) string {
		r, _ := reference.ParseNormalizedNamed(n) // WriteLayout parsed it
		return r.String()
	}
	for _, n := range names[1:] {
		if out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "tag", "--force", full(names[0]), full(n)).CombinedOutput(); err != nil {
			return fmt.Errorf("ctr images tag %s: %v: %s", n, err, out)
		}
	}
	return nil
}

// importNodeImage makes a linux/amd64 image of one layer (a tar stream), lets configure set its config, and
// imports it into the node's containerd (namespace k8s.io) under the tags that tags derives from its digest.
func importNodeImage(ctr, sock string, layerTar []byte, configure func(*v1.Config), tags func(v1.Hash) []string) error {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	configure(&cf.Config)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags(d) {
		tag, err := name.NewTag(t)
		if err != nil {
			return err
		}
		refs[tag] = img
	}
	dir, err := os.MkdirTemp("", "registry-kit-node-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "image.tar")
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		return err
	}
	if out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "import", path).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import: %v: %s", err, out)
	}
	return nil
}

// depHostPathPV makes a PersistentVolume of storage class class, pre-bound to the claim ns/claim, on a host
// directory the registry's non-root user can write. Deleted with its directory when the test ends.
func depHostPathPV(t testing.TB, cs kubernetes.Interface, class, ns, claim string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: class, Labels: map[string]string{"registry-kit.dev/e2e": "true"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: claim},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating PersistentVolume %s: %v", pv.Name, err)
	}
	t.Cleanup(func() {
		if err := cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting PersistentVolume %s: %v", pv.Name, err)
		}
	})
	return dir
}

// rkRun runs the registry-kit binary against the local cluster. Output is returned with secret redacted so a
// failure message never shows a password.
type depResult struct {
	out     string
	err     error
	elapsed time.Duration
}

func depRun(t testing.TB, stdin string, args ...string) depResult {
	t.Helper()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		kubeconfig = clusterEnv(t).get(t, "KUBECONFIG")
	}
	cmd := depExec(t, []string{"KUBECONFIG=" + kubeconfig}, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return depResult{out: out.String(), err: err, elapsed: time.Since(start)}
}

var depPasswordLine = regexp.MustCompile(`(?m)^\s*password: (\S+)$`)

// redact hides every secret in s.
func depRedact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return depPasswordLine.ReplaceAllString(s, "  password: <redacted>")
}

// depExec prepares the registry-kit binary with extra environment variables, stopped after 6 minutes.
func depExec(t testing.TB, env []string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// depFreeNodePort picks a node port no Service uses now, from a range the other tests do not use.
func depFreeNodePort(t testing.TB, cs kubernetes.Interface) int {
	t.Helper()
	svcs, err := cs.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing services: %v", err)
	}
	used := map[int32]bool{}
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			used[p.NodePort] = true
		}
	}
	for {
		p := int32(31000 + rand.IntN(1500))
		if !used[p] {
			return int(p)
		}
	}
}

// depUniqueName is a DNS label for a namespace or class that tests never share.
func depUniqueName(prefix string) string {
	return fmt.Sprintf("%s-%06x", prefix, rand.Uint32()&0xffffff)
}

// depNamespace returns a namespace name deploy itself creates, deleted (with --delete-data) when the test ends.
func depNamespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	ns := depUniqueName(prefix)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("E2E_KEEP_NAMESPACES") != "" {
			t.Logf("keeping namespace %s (E2E_KEEP_NAMESPACES)", ns)
			return
		}
		_ = depRun(t, "", "undeploy", "-n", ns, "--delete-data")
		bg := metav1.DeletePropagationBackground
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{PropagationPolicy: &bg})
	})
	return ns
}

func depWaitGone(t testing.TB, what string, get func(ctx context.Context) error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("%s still exists after 2 minutes", what)
	}
}
