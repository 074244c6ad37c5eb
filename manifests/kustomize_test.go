package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// devExamplePassword is the documented example password of user "dev" in overlays/dev/htpasswd.
const devExamplePassword = "dev-example-password"

// loadTree copies the on-disk manifests tree (this directory) into an in-memory filesystem rooted at /manifests,
// plus extra files (path relative to /manifests -> content).
func loadTree(t *testing.T, extra map[string][]byte) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, dir := range []string{"base", "overlays"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return mem.WriteFile(filepath.Join("/manifests", path), b)
		})
		if err != nil {
			t.Fatalf("copying %s: %v", dir, err)
		}
	}
	for p, b := range extra {
		if err := mem.WriteFile(filepath.Join("/manifests", p), b); err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

// buildKustomization runs kustomize on dir of mem and decodes every resource into a typed object.
func buildKustomization(t *testing.T, mem filesys.FileSystem, dir string) []runtime.Object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/manifests", dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []runtime.Object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		o, _, err := scheme.Codecs.UniversalDeserializer().Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("decoding %s from %s into a typed object: %v", r.CurId(), dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// renderRedacted renders objects keyed by "Kind/namespace/name", with Secret values replaced by their sha256 so a
// failing comparison never prints a credential.
func renderRedacted(t *testing.T, objs []runtime.Object) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok {
			c := s.DeepCopy()
			for k, v := range c.Data {
				sum := sha256.Sum256(v)
				c.Data[k] = []byte("sha256:" + hex.EncodeToString(sum[:]))
			}
			o = c
		}
		o.GetObjectKind().SetGroupVersionKind(o.GetObjectKind().GroupVersionKind())
		y, err := objectYAML(o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := metaOf(o)
		if err != nil {
			t.Fatal(err)
		}
		out[o.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetNamespace()+"/"+m.GetName()] = string(y)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKustomizeBuilds builds the base and each overlay with krusty and checks that the result is exactly what the
// generator makes for the options the overlay stands for.
func TestKustomizeBuilds(t *testing.T) {
	devHtpasswd := readFile(t, "overlays/dev/htpasswd")
	devSecret := readFile(t, "overlays/dev/http-secret")
	prod := prodOptions()
	scale := scaleOutOptions()
	scale.Htpasswd, scale.HTTPSecret = []byte(fixtureHtpasswd), []byte("scale-out-test-http-secret")
	scale.S3.AccessKey, scale.S3.SecretKey = []byte("scale-out-access-key"), []byte("scale-out-secret-key")

	tests := []struct {
		name  string
		dir   string
		extra map[string][]byte
		opts  Options
	}{
		{name: "base", dir: "base", opts: BaseOptions()},
		{name: "dev", dir: "overlays/dev", opts: Options{
			ServiceType: corev1.ServiceTypeNodePort,
			NodePort:    30500,
			StorageSize: resource.MustParse("1Gi"),
			Htpasswd:    devHtpasswd,
			HTTPSecret:  devSecret,
		}},
		{name: "prod", dir: "overlays/prod", opts: prod, extra: map[string][]byte{
			// The prod overlay's secret files are never checked in: provide them as a user would.
			"overlays/prod/htpasswd":    prod.Htpasswd,
			"overlays/prod/http-secret": prod.HTTPSecret,
		}},
		{name: "scale-out", dir: "overlays/scale-out", opts: scale, extra: map[string][]byte{
			"overlays/scale-out/htpasswd":      scale.Htpasswd,
			"overlays/scale-out/http-secret":   scale.HTTPSecret,
			"overlays/scale-out/s3-access-key": scale.S3.AccessKey,
			"overlays/scale-out/s3-secret-key": scale.S3.SecretKey,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := buildKustomization(t, loadTree(t, tc.extra), tc.dir)
			// The overlays bring their own htpasswd Secret without an access policy or a pull-only user.
			tc.opts.NoAccessPolicy = !tc.opts.ExternalSecrets
			want, err := Generate(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(renderRedacted(t, want.Objects()), renderRedacted(t, got)); diff != "" {
				t.Errorf("kustomize build %s differs from Generate (-generated +built):\n%s", tc.dir, diff)
			}
		})
	}
}

// TestProdOverlayNeedsSecretFiles: without the user's files the prod and scale-out overlays refuse to build,
// rather than deploying with a credential from the repository.
func TestProdOverlayNeedsSecretFiles(t *testing.T) {
	for _, dir := range []string{"prod", "scale-out"} {
		_, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(loadTree(t, nil), "/manifests/overlays/"+dir)
		if err == nil {
			t.Errorf("%s overlay built without its secret files", dir)
		}
	}
}

// TestDevExampleCredentials keeps the documented example password true.
func TestDevExampleCredentials(t *testing.T) {
	f, err := htpasswd.Parse(bytes.NewReader(readFile(t, "overlays/dev/htpasswd")))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("dev", devExamplePassword) {
		t.Error("overlays/dev/htpasswd does not hold user dev with the documented example password")
	}
	if diff := cmp.Diff([]string{"dev"}, f.Users()); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
}
