package image

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestLayoutAndArchive(t *testing.T) {
	idx, err := Build(fixture(t, "\x7fELF amd64 stand-in"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	write := func() (string, []byte) {
		dir := filepath.Join(t.TempDir(), "oci")
		if err := WriteLayout(dir, idx, "registry-kit:v1.2.3"); err != nil {
			t.Fatalf("WriteLayout: %v", err)
		}
		archive := filepath.Join(t.TempDir(), "image.tar")
		if err := WriteArchive(dir, archive, time.Unix(0, 0)); err != nil {
			t.Fatalf("WriteArchive: %v", err)
		}
		b, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		return dir, b
	}
	dir, first := write()
	_, second := write()
	if !bytes.Equal(first, second) {
		t.Error("two archives of the same index differ")
	}
	got, err := ReadLayout(dir)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("layout holds index %s, built %s", d, want)
	}
	var top v1.IndexManifest
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{
		"org.opencontainers.image.ref.name": "v1.2.3",
		"io.containerd.image.name":          "docker.io/library/registry-kit:v1.2.3",
	}, top.Manifests[0].Annotations); diff != "" {
		t.Errorf("index.json annotations (-want +got):\n%s", diff)
	}

	// Rewriting a layout replaces it; a directory that is not a layout is refused and left alone.
	if err := WriteLayout(dir, idx, "registry-kit:dev"); err != nil {
		t.Errorf("rewriting the layout: %v", err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = WriteLayout(other, idx, "registry-kit:dev")
	if err == nil || !strings.Contains(err.Error(), "is neither empty nor an OCI layout: refusing to overwrite it") {
		t.Errorf("WriteLayout into a non-layout directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Errorf("the refused directory lost its file: %v", err)
	}
	if err := WriteLayout(t.TempDir(), idx, "Not A Name"); err == nil || !strings.Contains(err.Error(), `parsing image name "Not A Name"`) {
		t.Errorf("bad name: %v", err)
	}
}

// TestPush pushes the index to an in-process registry that wants Basic auth, with the credentials from a docker
// config.json (what DOCKER_CONFIG points to), and reads both platforms back.
func TestPush(t *testing.T) {
	const user, password = "pusher", "push-test-password"
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	idx, err := Build(fixture(t, "\x7fELF amd64 stand-in"))
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/registry-kit:e2e"

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if _, err := Push(context.Background(), idx, ref, PushOptions{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("push without credentials: %v, want a 401", err)
	}
	cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
	if err := os.WriteFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Push(context.Background(), idx, ref, PushOptions{})
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	r, _ := name.ParseReference(ref)
	got, err := remote.Index(r, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	if err != nil {
		t.Fatalf("reading the pushed index: %v", err)
	}
	if gd, _ := got.Digest(); gd != d {
		t.Errorf("registry has %s, Push returned %s", gd, d)
	}
	m, _ := got.IndexManifest()
	for _, desc := range m.Manifests {
		img, err := got.Image(desc.Digest)
		if err != nil {
			t.Fatalf("reading the %s image: %v", desc.Platform, err)
		}
		if _, err := img.Layers(); err != nil {
			t.Fatalf("reading the %s layers: %v", desc.Platform, err)
		}
	}
	if len(m.Manifests) != 2 {
		t.Errorf("pushed index has %d images, want 2", len(m.Manifests))
	}
}

// TestGoBuild cross-compiles a small program for linux/arm64 the way the image build does and checks the ELF
// header: machine AArch64 and no dynamic loader.
func TestGoBuild(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.22\n",
		"main.go": "package main\n\nvar Version string\n\nfunc main() { println(Version) }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "hello")
	b := GoBuild{Dir: dir, Package: ".", Platform: arm64, LDFlags: "-s -w -X main.Version=v1", Output: out}
	if err := b.Run(context.Background()); err != nil {
		t.Fatalf("GoBuild: %v", err)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("ELF machine %s, want %s", f.Machine, elf.EM_AARCH64)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked")
		}
	}
	b.Package = "./missing"
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "go build for linux/arm64") {
		t.Errorf("building a missing package: %v", err)
	}
}
