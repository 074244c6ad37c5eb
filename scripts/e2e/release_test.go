//go:build e2e

package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/internal/image"
)

// TestReleaseDryRun runs scripts/release.sh --dry-run (make release-dry-run) twice into temporary directories: it
// builds both binaries, the multi-arch image, the chart, SBOMs and checksums, publishes nothing, and the second run
// gives byte-identical artifacts.
func TestReleaseDryRun(t *testing.T) {
	const version = "v0.0.0-rc.1"
	run := func() (string, string) {
		t.Helper()
		dist := filepath.Join(t.TempDir(), "dist")
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "release.sh"), "--dry-run")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "DIST="+dist, "VERSION="+version, "REVISION=e2e", "SOURCE_DATE_EPOCH=1700000000",
			"DOCKER_CONFIG="+t.TempDir()) // no credentials anywhere: a dry run must not need any
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("release.sh --dry-run: %v\n%s", err, out)
		}
		return dist, string(out)
	}
	dist, out := run()
	if !strings.Contains(out, "would push ghcr.io/registry-kit/registry-kit:"+version) {
		t.Errorf("dry run output does not say what it would push:\n%s", out)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(l)
		files = append(files, f[len(f)-1])
	}
	want := []string{
		"registry-kit-" + version + "-image.tar",
		"registry-kit-" + version + "-linux-amd64", "registry-kit-" + version + "-linux-amd64.spdx.json",
		"registry-kit-" + version + "-linux-arm64", "registry-kit-" + version + "-linux-arm64.spdx.json",
		"registry-kit-chart-" + version + ".tgz",
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("checksums.txt lists %v, want %v", files, want)
	}
	check := exec.Command("sha256sum", "--check", "checksums.txt")
	check.Dir = dist
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}

	var sbom struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name    string `json:"name"`
			Version string `json:"versionInfo"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dist, "registry-kit-"+version+"-linux-arm64.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sbom); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	pkgs := map[string]string{}
	for _, p := range sbom.Packages {
		pkgs[p.Name] = p.Version
	}
	if sbom.SPDXVersion != "SPDX-2.3" || pkgs["github.com/distribution/distribution/v3"] != "v3.1.2" ||
		pkgs["github.com/registry-kit/registry-kit"] == "" || pkgs["go"] == "" || len(pkgs) < 50 {
		t.Errorf("SBOM %s with %d packages; distribution %q, main %q, go %q", sbom.SPDXVersion, len(pkgs),
			pkgs["github.com/distribution/distribution/v3"], pkgs["github.com/registry-kit/registry-kit"], pkgs["go"])
	}

	idx, err := image.ReadLayout(filepath.Join(dist, "image"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("release image platforms %v", platforms)
	}
	chart := tgzFile(t, filepath.Join(dist, "registry-kit-chart-"+version+".tgz"), "registry-kit/Chart.yaml")
	if !strings.Contains(chart, "\nversion: 0.0.0-rc.1\n") || !strings.Contains(chart, "\nappVersion: \""+version+"\"\n") {
		t.Errorf("the release chart's Chart.yaml:\n%s", chart)
	}
	values := tgzFile(t, filepath.Join(dist, "registry-kit-chart-"+version+".tgz"), "registry-kit/values.yaml")
	if !strings.Contains(values, "repository: ghcr.io/registry-kit/registry-kit\n") || !strings.Contains(values, "tag: "+version+"\n") {
		t.Errorf("the release chart's values.yaml does not default to the release image:\n%s", values)
	}

	dist2, _ := run()
	again, err := os.ReadFile(filepath.Join(dist2, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(sums) {
		t.Errorf("a second release build of the same tree differs:\n%s\nvs\n%s", sums, again)
	}
}

func tgzFile(t *testing.T, path, name string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no %s", path, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}
