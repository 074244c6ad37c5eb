//go:build e2e

package e2e

// End-to-end tests of the in-process image build (registry-kit image build, what make image runs) and push: the
// multi-arch index in a real registry-kit serve, read back with crane, and the bootstrap path on the cluster.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	multiArchOnce   sync.Once
	multiArchLayout string
	multiArchDigest string
	multiArchErr    error
)

var builtDigestRE = regexp.MustCompile(`(?m)^built \S+@(sha256:[0-9a-f]{64}) \(linux/amd64, linux/arm64\)$`)

// imageBuild runs `registry-kit image build` for linux/amd64 (the binary under test) and linux/arm64 (go built from
// this source tree, as make image does) into dir, returning the index digest it printed.
func imageBuild(t testing.TB, dir string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), "image", "build", "--source", repoRoot, "--binary", "linux/amd64="+binary(t),
		"--version", "v0.0.0-e2e", "--revision", "e2e", "--tag", "registry-kit:e2e",
		"--oci-layout", filepath.Join(dir, "oci"), "--archive", filepath.Join(dir, "registry-kit.tar"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("registry-kit image build: %v\n%s", err, out)
	}
	m := builtDigestRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("registry-kit image build printed no digest for both platforms:\n%s", out)
	}
	return string(m[1]), nil
}

// multiArch builds the multi-arch layout once per test binary.
func multiArch(t testing.TB) (layoutDir, digest string) {
	t.Helper()
	multiArchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "registry-kit-e2e-image-")
		if err != nil {
			multiArchErr = err
			return
		}
		multiArchDigest, multiArchErr = imageBuild(t, dir)
		multiArchLayout = filepath.Join(dir, "oci")
	})
	if multiArchErr != nil {
		t.Fatal(multiArchErr)
	}
	return multiArchLayout, multiArchDigest
}

// configDir is the DOCKER_CONFIG directory with one registry's credentials (dockerConfig's), which registry-kit
// image push and crane read.
func configDir(t *testing.T, server, user, pass string) string {
	t.Helper()
	dir, _ := dockerConfig(t, server, user, pass)
	return dir
}

// imagePush runs `registry-kit image push` with DOCKER_CONFIG=cfg; the output has secret redacted.
func imagePush(t testing.TB, cfg, layoutDir, ref, secret string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), "image", "push", "--oci-layout", layoutDir, ref)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), secret) {
		t.Errorf("registry-kit image push printed the password")
	}
	return strings.ReplaceAll(string(out), secret, "<redacted>"), err
}

// TestImageBuildPush: image build gives the same digest twice from the same tree; image push puts the multi-arch
// index into a registry-kit serve with the docker config's credentials (and fails with wrong ones); crane sees
// both platforms, and the arm64 image's binary is an AArch64 static ELF.
func TestImageBuildPush(t *testing.T) {
	crane := needTool(t, "crane")
	layoutDir, digest := multiArch(t)
	again, err := imageBuild(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if again != digest {
		t.Errorf("a second image build of the same tree gave %s, the first %s: the build is not reproducible", again, digest)
	}

	reg := startServe(t)
	ref := reg.Addr + "/registry-kit:e2e"
	wrong := configDir(t, reg.Addr, reg.User, "wrong-"+reg.Password)
	if out, err := imagePush(t, wrong, layoutDir, ref, reg.Password); err == nil || !strings.Contains(out, "401") {
		t.Errorf("image push with a wrong password: %v, want a 401:\n%s", err, out)
	}
	cfg := configDir(t, reg.Addr, reg.User, reg.Password)
	out, err := imagePush(t, cfg, layoutDir, ref, reg.Password)
	if err != nil {
		t.Fatalf("image push: %v\n%s", err, out)
	}
	if want := "pushed " + ref + "@" + digest + "\n"; out != want {
		t.Errorf("image push printed %q, want %q", out, want)
	}

	craneOut := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(crane, args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return b
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(craneOut("manifest", ref), &index); err != nil {
		t.Fatalf("crane manifest: %v", err)
	}
	if got := strings.TrimSpace(string(craneOut("digest", ref))); got != digest {
		t.Errorf("crane digest %s, built %s", got, digest)
	}
	platforms := map[string]v1.Hash{}
	for _, m := range index.Manifests {
		platforms[m.Platform.String()] = m.Digest
	}
	if len(platforms) != 2 || platforms["linux/amd64"] == (v1.Hash{}) || platforms["linux/arm64"] == (v1.Hash{}) {
		t.Fatalf("crane manifest %s lists %v, want linux/amd64 and linux/arm64", ref, platforms)
	}
	t.Logf("crane manifest %s: %v", ref, platforms)

	repo := reg.Addr + "/registry-kit"
	for platform, want := range map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64} {
		var m v1.Manifest
		if err := json.Unmarshal(craneOut("manifest", repo+"@"+platforms[platform].String()), &m); err != nil {
			t.Fatal(err)
		}
		var cfgFile v1.ConfigFile
		if err := json.Unmarshal(craneOut("config", repo+"@"+platforms[platform].String()), &cfgFile); err != nil {
			t.Fatal(err)
		}
		if got := cfgFile.Platform().String(); got != platform || cfgFile.Config.User != "65532:65532" ||
			cfgFile.Config.Labels["org.opencontainers.image.version"] != "v0.0.0-e2e" {
			t.Errorf("%s config: platform %s, user %q, labels %v", platform, got, cfgFile.Config.User, cfgFile.Config.Labels)
		}
		bin := layerFile(t, craneOut("blob", repo+"@"+m.Layers[len(m.Layers)-1].Digest.String()), "registry-kit")
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("%s: /registry-kit is not an ELF file: %v", platform, err)
		}
		if f.Machine != want {
			t.Errorf("%s: /registry-kit is built for %s, want %s", platform, f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: /registry-kit is dynamically linked", platform)
			}
		}
		t.Logf("%s: /registry-kit ELF machine %s, %d bytes", platform, f.Machine, len(bin))
	}
}

// layerFile returns the content of file name in a gzip-compressed layer.
func layerFile(t *testing.T, blob []byte, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("layer has no %s", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// TestVersionOfBinary: the real binary reports the embedded distribution version (a test binary cannot).
func TestVersionOfBinary(t *testing.T) {
	out, err := exec.Command(binary(t), "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	for _, k := range []string{"version", "goVersion", "platform"} {
		if s, _ := v[k].(string); s == "" {
			t.Errorf("version -o json has no %s:\n%s", k, out)
		}
	}
	if v["distributionVersion"] != "v3.1.2" {
		t.Errorf("distributionVersion = %v, want v3.1.2:\n%s", v["distributionVersion"], out)
	}
}

// TestImageBootstrap is the air-gapped bootstrap: serve on the host, image push into it, deploy --image from it;
// the registry pod pulls its own image from the host registry (with a pull secret on the namespace's default
// ServiceAccount) and serves.
func TestImageBootstrap(t *testing.T) {
	cs := kubeClient(t)
	layoutDir, digest := multiArch(t)
	reg := startServe(t)
	trustRegistry(t, reg.Addr)
	ref := reg.Addr + "/registry-kit:bootstrap"
	if out, err := imagePush(t, configDir(t, reg.Addr, reg.User, reg.Password), layoutDir, ref, reg.Password); err != nil {
		t.Fatalf("image push: %v\n%s", err, out)
	}

	ns := newNamespace(t)
	ps := depRun(t, reg.Password+"\n", "pull-secret", "create", "host-registry", "-n", ns, "--server", reg.Addr,
		"--username", reg.User, "--password-stdin", "--service-account", "default")
	if ps.err != nil {
		t.Fatalf("pull-secret create: %v\n%s", ps.err, depRedact(ps.out, reg.Password))
	}
	class := depUniqueName("e2e-rk-pv")
	depHostPathPV(t, cs, class, ns, "registry")
	port := depFreeNodePort(t, cs)
	res := depRun(t, "", "deploy", "-n", ns, "--image", ref, "--node-port", fmt.Sprint(port),
		"--storage-class", class, "--storage-size", "1Gi", "--timeout", "3m")
	m := depPasswordLine.FindStringSubmatch(res.out)
	secrets := []string{reg.Password}
	if m != nil {
		secrets = append(secrets, m[1])
	}
	if res.err != nil {
		t.Fatalf("deploy --image %s: %v\n%s", ref, res.err, depRedact(res.out, secrets...))
	}
	t.Cleanup(func() { _ = depRun(t, "", "undeploy", "-n", ns, "--delete-data") })
	t.Logf("deploy --image %s: serving after %s", ref, res.elapsed.Round(100*1e6))

	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=registry"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("listing the registry pods: %v (%d pods)", err, len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		st := p.Status.ContainerStatuses[0]
		if st.Image != ref || !strings.HasSuffix(st.ImageID, digest) {
			t.Errorf("registry pod %s runs image %q (ID %q), want %s pulled as %s", p.Name, st.Image, st.ImageID, ref, digest)
		}
		t.Logf("registry pod %s runs %s (%s), pulled from the host registry", p.Name, st.Image, st.ImageID)
	}
	push := depField(res.out, "Push from this machine to:")
	resp, err := http.Get("http://" + push + "/v2/")
	if err != nil {
		t.Fatalf("the deployed registry at %s: %v", push, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ on the deployed registry: %d, want 401 (it serves with authentication)", resp.StatusCode)
	}
}
