//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	sbomType = "application/spdx+json"
	sigType  = "application/vnd.registry-kit.e2e.signature"
)

// orasSession is oras logged in to one or more registries with one registry config file.
type orasSession struct {
	t    *testing.T
	oras *cli
	cfg  string
	dir  string // working directory holding the files to push
}

func newORASSession(t *testing.T, user, password string, regs ...string) *orasSession {
	t.Helper()
	o := &orasSession{t: t, oras: newCLI(t, needTool(t, "oras"), []string{password}), cfg: filepath.Join(t.TempDir(), "config.json"), dir: t.TempDir()}
	o.oras.dir = o.dir
	for _, reg := range regs {
		o.oras.must(password, "login", "--plain-http", "--registry-config", o.cfg, "--username", user, "--password-stdin", reg)
	}
	for name, content := range map[string]string{"app.txt": "the subject\n", "sbom.spdx.json": `{"spdxVersion":"SPDX-2.3","name":"app"}` + "\n", "sig.bin": "not really a signature\n"} {
		if err := os.WriteFile(filepath.Join(o.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func (o *orasSession) must(args ...string) string {
	o.t.Helper()
	return o.oras.must("", append(args, "--plain-http", "--registry-config", o.cfg)...)
}

var orasDigestRE = regexp.MustCompile(`(?m)^Digest: (sha256:[a-f0-9]{64})$`)

func orasDigest(t *testing.T, out string) string {
	t.Helper()
	m := orasDigestRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no Digest line in oras output:\n%s", out)
	}
	return m[1]
}

type discovered struct {
	Digest    string `json:"digest"`
	Referrers []struct {
		Digest       string            `json:"digest"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"referrers"`
}

// discover lists the referrers of ref through the referrers API (oras is told not to fall back to tags) as
// "artifactType digest" lines, sorted.
func (o *orasSession) discover(ref string, extra ...string) []string {
	o.t.Helper()
	out := o.must(append([]string{"discover", "--distribution-spec", "v1.1-referrers-api", "--format", "json"}, append(extra, ref)...)...)
	var d discovered
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		o.t.Fatalf("oras discover --format json: %v\n%s", err, out)
	}
	var got []string
	for _, r := range d.Referrers {
		got = append(got, r.ArtifactType+" "+r.Digest)
	}
	sort.Strings(got)
	return got
}

// referrersScenario attaches an SBOM and a signature to an image through pushReg with oras, and checks through
// readReg (the same registry, or another replica on the same storage) that oras discovers both, as JSON and as a
// tree, filters them by artifact type, pulls each by digest, and that no fallback tag was created.
func referrersScenario(t *testing.T, o *orasSession, pushReg, readReg string) {
	subject := orasDigest(t, o.must("push", pushReg+"/e2e/signed:v1", "app.txt"))
	sbom := orasDigest(t, o.must("attach", "--artifact-type", sbomType, pushReg+"/e2e/signed:v1", "sbom.spdx.json"))
	sig := orasDigest(t, o.must("attach", "--artifact-type", sigType, "--annotation", "org.registry-kit.e2e.signer=ci", pushReg+"/e2e/signed:v1", "sig.bin"))

	ref := readReg + "/e2e/signed@" + subject
	want := []string{sbomType + " " + sbom, sigType + " " + sig}
	sort.Strings(want)
	if diff := cmp.Diff(want, o.discover(ref)); diff != "" {
		t.Errorf("oras discover (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{sbomType + " " + sbom}, o.discover(ref, "--artifact-type", sbomType)); diff != "" {
		t.Errorf("oras discover --artifact-type %s (-want +got):\n%s", sbomType, diff)
	}
	if diff := cmp.Diff([]string{sigType + " " + sig}, o.discover(readReg+"/e2e/signed:v1", "--artifact-type", sigType)); diff != "" {
		t.Errorf("oras discover --artifact-type %s of the tag (-want +got):\n%s", sigType, diff)
	}
	tree := o.must("discover", "--distribution-spec", "v1.1-referrers-api", "--format", "tree", ref)
	for _, s := range []string{sbomType, sigType, sbom, sig, "org.registry-kit.e2e.signer: ci"} {
		if !strings.Contains(tree, s) {
			t.Errorf("oras discover --format tree does not show %q:\n%s", s, tree)
		}
	}
	for file, d := range map[string]string{"sbom.spdx.json": sbom, "sig.bin": sig} {
		out := t.TempDir()
		o.must("pull", "--output", out, readReg+"/e2e/signed@"+d)
		got, err := os.ReadFile(filepath.Join(out, file))
		wantBytes, _ := os.ReadFile(filepath.Join(o.dir, file))
		if err != nil || !bytes.Equal(got, wantBytes) {
			t.Errorf("oras pull %s by digest: %s differs or is missing (%v)", d, file, err)
		}
	}
	if tags := strings.Fields(o.must("repo", "tags", readReg+"/e2e/signed")); !cmp.Equal(tags, []string{"v1"}) {
		t.Errorf("tags %v, want only v1: oras fell back to the referrers tag schema", tags)
	}
}

// TestReferrersORAS attaches, discovers and pulls an SBOM and a signature with oras against `registry-kit serve`
// (filesystem storage, authentication).
func TestReferrersORAS(t *testing.T) {
	s := startServe(t, "--delete-enabled")
	o := newORASSession(t, s.User, s.Password, s.Addr)
	referrersScenario(t, o, s.Addr, s.Addr)

	// Deleting the signature takes it out of the referrers.
	subject := strings.TrimSpace(o.must("resolve", s.Addr+"/e2e/signed:v1"))
	before := o.discover(s.Addr + "/e2e/signed@" + subject)
	var sig string
	for _, l := range before {
		if strings.HasPrefix(l, sigType+" ") {
			sig = strings.TrimPrefix(l, sigType+" ")
		}
	}
	o.must("manifest", "delete", "--force", s.Addr+"/e2e/signed@"+sig)
	if got := o.discover(s.Addr + "/e2e/signed@" + subject); len(got) != 1 || !strings.HasPrefix(got[0], sbomType+" ") {
		t.Errorf("after deleting the signature: referrers %v, want only the SBOM", got)
	}
	if strings.Contains(s.log.String(), s.Password) {
		t.Error("the admin password appears in the server output")
	}
}

// TestReferrersORASScaleOut runs the same with two replicas on one MinIO bucket: everything is pushed through one
// replica and discovered and pulled through the other.
func TestReferrersORASScaleOut(t *testing.T) {
	so := newScaleOut(t)
	a, b := so.serve(nil), so.serve(nil)
	o := newORASSession(t, scaleoutUser, so.password, a.Addr, b.Addr)
	referrersScenario(t, o, a.Addr, b.Addr)
}

// TestReferrersBackfill pushes referrers with oras to stock distribution v3.1.2, which has no referrers API, so oras
// falls back to the sha256-<hex> tag; then `registry-kit serve` on the same data directory lists them through the
// referrers API (it backfills at start).
func TestReferrersBackfill(t *testing.T) {
	data := t.TempDir()
	stock := startStockRegistry(t, data)
	o := newORASSession(t, "", "")
	subject := orasDigest(t, o.must("push", stock+"/e2e/legacy:v1", "app.txt"))
	sbom := orasDigest(t, o.must("attach", "--artifact-type", sbomType, stock+"/e2e/legacy:v1", "sbom.spdx.json"))
	fallback := strings.Replace(subject, ":", "-", 1)
	if tags := strings.Fields(o.must("repo", "tags", stock+"/e2e/legacy")); !cmp.Equal(tags, []string{fallback, "v1"}) {
		t.Fatalf("stock registry tags %v, want the fallback tag %s and v1", tags, fallback)
	}

	s := startServe(t, "--data-dir", data, "--no-auth")
	want := []string{sbomType + " " + sbom}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := o.discover(s.Addr + "/e2e/legacy@" + subject)
		if cmp.Equal(want, got) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("referrers through the API %v, want %v\nserve output:\n%s", got, want, s.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(s.log.String(), "referrers backfilled from fallback tags") {
		t.Errorf("serve logged no backfill summary:\n%s", s.log.String())
	}
}

// startStockRegistry runs stock distribution v3.1.2 without authentication on a filesystem root and returns its
// host:port.
func startStockRegistry(t *testing.T, root string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", root, addr)
	runStockRegistry(t, t.TempDir(), cfg)
	waitFor200(t, "http://"+addr+"/v2/", 20*time.Second)
	return addr
}
