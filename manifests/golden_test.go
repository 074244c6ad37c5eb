package manifests

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/cryptotest"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite golden files, manifests/base and generated overlay files from the generator")

// fixtureHtpasswd is user "alice" with password "alice-test-password" at bcrypt cost 5.
const fixtureHtpasswd = "alice:$2y$05$yipiRzgH6lWLUtbMoctswevRAI2TvhATyTzLSmalyNGuSI0SZKb3.\n"

// seededRand is a deterministic stand-in for crypto/rand.Reader.
func seededRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// goldenCases are the option sets whose rendering is checked in under testdata/.
func goldenCases() []struct {
	name string
	opts Options
	json bool
} {
	fixed := func(o Options) Options {
		if len(o.Htpasswd) == 0 && len(o.Users) == 0 {
			o.Htpasswd = []byte(fixtureHtpasswd)
		}
		if len(o.HTTPSecret) == 0 {
			o.HTTPSecret = []byte("golden-http-secret")
		}
		return o
	}
	return []struct {
		name string
		opts Options
		json bool
	}{
		{name: "defaults", opts: fixed(Options{})},
		{name: "defaults-json", opts: fixed(Options{}), json: true},
		{name: "generated-admin", opts: Options{Rand: seededRand(1), BcryptCost: 5}},
		{name: "nodeport-tls-labels", opts: fixed(Options{
			Namespace:     "registry-system",
			Name:          "images",
			Image:         "127.0.0.1:5000/registry-kit:v1.2.3",
			ServiceType:   corev1.ServiceTypeNodePort,
			NodePort:      30500,
			StorageSize:   resource.MustParse("1Gi"),
			StorageClass:  ptr.To("local-path"),
			TLSSecretName: "registry-tls",
			Labels:        map[string]string{"team": "platform"},
			Annotations:   map[string]string{"example.com/owner": "platform@example.com"},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			},
		})},
		{name: "existing-claim-rwx", opts: fixed(Options{
			OmitNamespace: true,
			Namespace:     "shared",
			ExistingClaim: "nfs-registry",
			AccessMode:    corev1.ReadWriteMany,
			Replicas:      3,
		})},
		{name: "ingress", opts: prodOptions()},
		{name: "scale-out-with-redis", opts: func() Options {
			o := fixed(scaleOutOptions())
			o.S3.AccessKey, o.S3.SecretKey = []byte("golden-access-key"), []byte("golden-secret-key")
			o.Redis = Redis{InCluster: true, Password: []byte("golden-redis-password"), Image: "127.0.0.1:5000/redis:7"}
			return o
		}()},
	}
}

// scaleOutOptions are the options the scale-out overlay must build to (with its secret files): two replicas on a
// MinIO bucket over plain http inside the cluster, and an existing Redis.
func scaleOutOptions() Options {
	return Options{
		Replicas: 2,
		Storage:  StorageS3,
		S3: S3{
			Endpoint:       "http://minio.storage.svc:9000",
			Bucket:         "registry",
			RootDirectory:  "/registry",
			ForcePathStyle: true,
			Insecure:       true,
		},
		Redis: Redis{Addrs: []string{"redis.storage.svc:6379"}},
	}
}

// prodOptions are the options the prod overlay must build to (with its secret files).
func prodOptions() Options {
	return Options{
		StorageSize:  resource.MustParse("100Gi"),
		StorageClass: ptr.To("standard"),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
		Ingress:    &Ingress{Host: "registry.example.com", ClassName: ptr.To("nginx"), TLSSecretName: "registry-tls"},
		Htpasswd:   []byte(fixtureHtpasswd),
		HTTPSecret: []byte("prod-test-http-secret"),
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			// bcrypt salts come from crypto/rand; make them reproducible for the cases that hash a password.
			cryptotest.SetGlobalRandom(t, 1)
			s, err := Generate(tc.opts)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			render, ext := s.YAML, ".yaml"
			if tc.json {
				render, ext = s.JSON, ".json"
			}
			got, err := render()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", tc.name+ext), got)
		})
	}
}

// checkGolden compares got with the file at path, or rewrites the file with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test ./manifests -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the generator's output (-file +generated); run go test ./manifests -update if intended:\n%s", path, diff)
	}
}

// TestBaseIsGenerated fails when manifests/base differs from Base(), file by file, with no extra files.
func TestBaseIsGenerated(t *testing.T) {
	files, err := Base()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if f.Secret {
			t.Errorf("base contains Secret file %s; the base must hold no credential", f.Name)
		}
		names = append(names, f.Name)
		checkGolden(t, filepath.Join("base", f.Name), f.Data)
	}
	entries, err := os.ReadDir("base")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			if *update {
				if err := os.Remove(filepath.Join("base", e.Name())); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("base/%s is not generated; remove it or run go test ./manifests -update", e.Name())
		}
	}
}

// TestProdIngressIsGenerated keeps the prod overlay's ingress.yaml equal to the generator's Ingress.
func TestProdIngressIsGenerated(t *testing.T) {
	s, err := Generate(prodOptions())
	if err != nil {
		t.Fatal(err)
	}
	y, err := objectYAML(s.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("overlays", "prod", "ingress.yaml"), y)
}

// TestScaleOutPDBIsGenerated keeps the scale-out overlay's PodDisruptionBudget equal to the generator's.
func TestScaleOutPDBIsGenerated(t *testing.T) {
	o := scaleOutOptions()
	o.Htpasswd, o.HTTPSecret = []byte(fixtureHtpasswd), []byte("x")
	s, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	y, err := objectYAML(s.PodDisruptionBudget)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("overlays", "scale-out", "poddisruptionbudget.yaml"), y)
}

// TestGenerateIsDeterministic: the same options and the same random stream give the same bytes.
func TestGenerateIsDeterministic(t *testing.T) {
	render := func() []byte {
		cryptotest.SetGlobalRandom(t, 7)
		s, err := Generate(Options{Rand: seededRand(3), BcryptCost: 4})
		if err != nil {
			t.Fatal(err)
		}
		y, err := s.YAML()
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	if a, b := render(), render(); !bytes.Equal(a, b) {
		t.Error("two runs with the same seed differ")
	}
}
