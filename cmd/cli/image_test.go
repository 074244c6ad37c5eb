package cli

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var builtRE = regexp.MustCompile(`^built (\S+)@(sha256:[0-9a-f]{64}) \(([^)]*)\)\n`)

// TestImageBuildAndPush builds from prebuilt stand-in binaries (no go build), twice with the same digest, and
// pushes the layout to an in-process registry.
func TestImageBuildAndPush(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"amd64", "arm64", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("stand-in "+f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := func(out string) []string {
		t.Helper()
		stdout, _, err := runCLI(t, "", "image", "build", "--version", "v1.2.3", "--revision", "abc123",
			"--binary", "linux/amd64="+filepath.Join(dir, "amd64"), "--binary", "linux/arm64="+filepath.Join(dir, "arm64"),
			"--ca-bundle", filepath.Join(dir, "ca.crt"),
			"--oci-layout", filepath.Join(out, "oci"), "--archive", filepath.Join(out, "image.tar"))
		if err != nil {
			t.Fatalf("image build: %v", err)
		}
		m := builtRE.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("image build printed:\n%s", stdout)
		}
		return m[1:]
	}
	first, out := build(t.TempDir()), t.TempDir()
	second := build(out)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("two builds of the same inputs (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ghcr.io/registry-kit/registry-kit:v1.2.3", first[1], "linux/amd64, linux/arm64"}, first); diff != "" {
		t.Errorf("build summary (-want +got):\n%s", diff)
	}

	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	ref := strings.TrimPrefix(srv.URL, "http://") + "/registry-kit:v1.2.3"
	stdout, _, err := runCLI(t, "", "image", "push", "--oci-layout", filepath.Join(out, "oci"), ref)
	if err != nil {
		t.Fatalf("image push: %v", err)
	}
	if want := "pushed " + ref + "@" + first[1] + "\n"; stdout != want {
		t.Errorf("image push printed %q, want %q", stdout, want)
	}
	r, _ := name.ParseReference(ref)
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != first[1] {
		t.Errorf("registry has %s, built %s", desc.Digest, first[1])
	}
}

func TestImageBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{name: "binary for an unlisted platform", args: []string{"--platform", "linux/amd64", "--binary", "linux/arm64=x"},
			want: "--binary linux/arm64: platform not in --platform linux/amd64"},
		{name: "bad SOURCE_DATE_EPOCH", env: "yesterday", args: []string{"--binary", "linux/amd64=x"},
			want: `SOURCE_DATE_EPOCH "yesterday": must be a number of seconds since 1970`},
		{name: "empty layout", args: []string{"--oci-layout", ""}, want: "--oci-layout: must not be empty"},
		{name: "missing binary", args: []string{"--platform", "linux/amd64", "--binary", "linux/amd64=/nonexistent/registry-kit"},
			want: "reading the linux/amd64 binary: open /nonexistent/registry-kit: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			args := append([]string{"image", "build", "--oci-layout", filepath.Join(t.TempDir(), "oci")}, tc.args...)
			_, _, err := runCLI(t, "", args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := runCLI(t, "", "image", "push", "--oci-layout", t.TempDir(), "127.0.0.1:1/x:y"); err == nil ||
		!strings.Contains(err.Error(), "opening OCI layout") && !strings.Contains(err.Error(), "index.json") {
		t.Errorf("push from an empty directory: %v", err)
	}
}
