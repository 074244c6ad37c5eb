//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cosignSigType is the artifactType cosign gives signatures it stores as OCI 1.1 referrers.
const cosignSigType = "application/vnd.dev.cosign.artifact.sig.v1+json"

// TestReferrersCosign signs an image with cosign in its OCI 1.1 mode (a local key pair, no transparency log) and
// verifies it: the signature is a referrer found through the referrers API, no sha256-<hex>.sig tag is made, and a
// verification with another key fails.
func TestReferrersCosign(t *testing.T) {
	s := startServe(t)
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{s.Addr: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(s.User + ":" + s.Password))}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cosign := newCLI(t, needTool(t, "cosign"), []string{s.Password},
		"DOCKER_CONFIG="+dir, "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1", "TUF_ROOT="+filepath.Join(dir, "tuf"), "HOME="+dir)
	keys, other := filepath.Join(dir, "keys"), filepath.Join(dir, "other")
	for _, d := range []string{keys, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		cosign.dir = d
		cosign.must("", "generate-key-pair")
	}

	o := newORASSession(t, s.User, s.Password, s.Addr)
	subject := orasDigest(t, o.must("push", s.Addr+"/e2e/cosigned:v1", "app.txt"))
	ref := s.Addr + "/e2e/cosigned@" + subject
	insecure := []string{"--allow-http-registry", "--allow-insecure-registry"}
	cosign.must("", append([]string{"sign", "--key", filepath.Join(keys, "cosign.key"), "--tlog-upload=false",
		"--registry-referrers-mode", "oci-1-1", "-y", ref}, insecure...)...)
	verify := append([]string{"verify", "--insecure-ignore-tlog=true", "--experimental-oci11"}, insecure...)
	out := cosign.must("", append(verify, "--key", filepath.Join(keys, "cosign.pub"), ref)...)
	if !strings.Contains(out, "The signatures were verified against the specified public key") {
		t.Errorf("cosign verify did not report the signature verified:\n%s", out)
	}
	if out, err := cosign.run("", append(verify, "--key", filepath.Join(other, "cosign.pub"), ref)...); err == nil {
		t.Errorf("cosign verify with another key succeeded, want a failure:\n%s", out)
	}

	got := o.discover(ref)
	if len(got) != 1 || !strings.HasPrefix(got[0], cosignSigType+" ") {
		t.Errorf("referrers of the signed image %v, want one %s", got, cosignSigType)
	}
	if tags := strings.Fields(o.must("repo", "tags", s.Addr+"/e2e/cosigned")); !cmp.Equal(tags, []string{"v1"}) {
		t.Errorf("tags %v, want only v1: cosign stored its signature as a tag", tags)
	}
}
