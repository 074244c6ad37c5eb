//go:build e2e

package e2e

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// conformanceModule is the OCI distribution-spec conformance suite the registry is held to (see TESTING.md).
const conformanceModule = "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"

// suiteEnv turns on every test group the suite offers ("dev" adds upload cancel, required digest headers and tag
// parameters to the 1.1 defaults, which already include the referrers API, subjects and sha512 content). The one
// data group left off is the suite's own default-off "sparse": manifests naming blobs and manifests that were never
// pushed, which distribution refuses by design (it checks every reference exists before storing a manifest).
var suiteEnv = []string{
	"OCI_VERSION=dev",
	"OCI_API_REFERRER=true",
	"OCI_API_MANIFESTS_TAG_PARAM=true",
	"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	"OCI_API_BLOBS_DIGEST_HEADER=true",
	"OCI_API_MANIFESTS_DIGEST_HEADER=true",
	"OCI_DATA_SHA512=true",
	"OCI_DATA_SUBJECT=true",
	"OCI_DATA_SUBJECT_MISSING=true",
	"OCI_DATA_SUBJECT_LIST=true",
}

// optionalSkips are the specs the suite may skip: behaviour the spec leaves optional that registry-kit does not
// offer. A mount without a source repository would let anyone who can push to one repository link any blob whose
// digest they know; clients fall back to uploading it.
var optionalSkips = regexp.MustCompile(`/blob-mount-anonymous$`)

// mustPassGroups are spec groups that have to run without a failure and with passes.
var mustPassGroups = []string{"ping", "empty", "image", "index", "sha256 blobs", "sha512 blobs", "sha512", "custom-fields",
	"nested-index", "artifact", "artifacts-with-subject", "index-with-subject", "missing-subject", "tag-param-sha256",
	"tag-param-sha512"}

// layerURLGroup holds the specs for layers with foreign URLs: distribution rejects such manifests unless manifest URL
// validation is configured, which serve does. Every one of its specs must pass.
const layerURLGroup = "non-distributable-layers"

// minSpecs guards against a truncated run that "passes" because it ran almost nothing (the suite has 789 specs with
// suiteEnv).
const minSpecs = 750

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Disabled int         `xml:"disabled,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name   string `xml:"name,attr"`
	Status string `xml:"status,attr"`
	Out    string `xml:"system-out"`
}

// TestConformance runs the OCI distribution-spec conformance suite against `registry-kit serve` with authentication,
// deletes enabled, an access policy giving the suite's user every right (through a rule, so every request goes
// through the policy) and every test group on (suiteEnv), prints the counts, and fails on any failure and on any
// skip outside optionalSkips.
func TestConformance(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "access-policy.yaml")
	if err := os.WriteFile(policy, []byte("rules:\n  - users: [admin]\n    repos: ['**']\n    actions: [pull, push, delete]\n"+
		"  - users: ['*']\n    repos: ['**']\n    actions: [pull]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--delete-enabled", "--access-policy", policy)
	if s.Password == "" {
		t.Fatal("serve did not create the admin password file")
	}
	if !strings.Contains(s.Output(), "access policy in effect") {
		t.Fatalf("serve did not load the access policy:\n%s", s.Output())
	}
	runConformance(t, s, s.User, s.Password)
}

// TestConformanceS3 runs the suite the same way against a replica on S3 storage (MinIO) with the Redis cache: the
// referrer edges and sha512 links go through the S3 driver.
func TestConformanceS3(t *testing.T) {
	so := newScaleOut(t)
	s := so.serve(map[string]string{"--delete-enabled": "true"})
	runConformance(t, s, scaleoutUser, so.password)
}

// runConformance runs the suite against s as user and checks the results.
func runConformance(t *testing.T, s *serveInstance, user, password string) {
	t.Helper()
	bin := conformanceBinary(t)
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+s.Addr,
		"OCI_TLS=disabled",
		"OCI_USERNAME="+user,
		"OCI_PASSWORD="+password,
		"OCI_RESULTS_DIR="+results,
	)
	cmd.Env = append(cmd.Env, suiteEnv...)
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	t.Logf("conformance suite ran in %s (exit: %v)", time.Since(start).Round(time.Millisecond), runErr)
	if leaked(results, password) || strings.Contains(string(out), password) || strings.Contains(s.Output(), password) {
		t.Error("the admin password appears in the conformance results or the server output")
	}

	suite, err := readJUnit(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("conformance suite produced no readable junit.xml (exit: %v): %v\n%s", runErr, err, redact(tail(string(out), 40), password))
	}
	r := classify(suite.Cases)
	t.Logf("OCI conformance (%s):\n  suite totals: %d tests, %d passed, %d failed, %d skipped, %d disabled\n"+
		"  specs in junit.xml: %d passed, %d failed, %d skipped (of %d)",
		conformanceModule, suite.Tests, suite.Tests-suite.Failures-suite.Skipped-suite.Disabled, suite.Failures,
		suite.Skipped, suite.Disabled, r.passed, r.failed, r.skipped, len(suite.Cases))
	if len(r.skippedNames) > 0 {
		t.Logf("  skipped by the suite (optional behaviour): %s", strings.Join(uniq(r.skippedNames), "; "))
	}

	if len(suite.Cases) < minSpecs {
		t.Errorf("junit.xml lists %d specs, want at least %d: the run was cut short", len(suite.Cases), minSpecs)
	}
	for _, f := range r.failures {
		t.Errorf("conformance failure %q:\n%s", f.Name, redact(strings.TrimSpace(f.Out), password))
	}
	for _, sk := range r.unexpectedSkips {
		t.Errorf("conformance spec %q skipped (the suite skips what it finds unsupported):\n%s", sk.Name, redact(strings.TrimSpace(sk.Out), password))
	}
	for _, g := range mustPassGroups {
		if st := r.groups[g]; st.passed == 0 || st.failed > 0 {
			t.Errorf("spec group %q: %d passed, %d failed of %d, want passes and no failure", g, st.passed, st.failed, st.total)
		}
	}
	if st := r.groups[layerURLGroup]; st.total == 0 || st.passed != st.total {
		t.Errorf("layer URL specs (%s): %d of %d passed, want all", layerURLGroup, st.passed, st.total)
	}
	if runErr == nil && r.failed > 0 {
		t.Errorf("the suite exited 0 although %d specs failed", r.failed)
	}
	if runErr != nil && r.failed == 0 {
		t.Errorf("the suite failed without a failing spec: %v\n%s", runErr, redact(tail(string(out), 40), password))
	}
}

type groupStats struct{ total, passed, failed int }

type classified struct {
	passed, failed, skipped int
	failures                []junitCase
	unexpectedSkips         []junitCase
	groups                  map[string]groupStats
	skippedNames            []string
}

// classify counts spec results per group and collects failures and skips of non-optional specs.
func classify(cases []junitCase) classified {
	r := classified{groups: map[string]groupStats{}}
	for _, c := range cases {
		name := strings.TrimPrefix(c.Name, "OCI Conformance Test/")
		group, _, _ := strings.Cut(name, "/")
		st := r.groups[group]
		st.total++
		switch c.Status {
		case "passed":
			r.passed++
			st.passed++
		case "skipped":
			r.skipped++
			r.skippedNames = append(r.skippedNames, name)
			if !optionalSkips.MatchString(name) {
				r.unexpectedSkips = append(r.unexpectedSkips, c)
			}
		default: // "failure", and anything the suite may add later counts as not passed
			r.failed++
			st.failed++
			r.failures = append(r.failures, c)
		}
		r.groups[group] = st
	}
	return r
}

func readJUnit(path string) (junitSuite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return junitSuite{}, err
	}
	var s junitSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		return junitSuite{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	if len(s.Suites) != 1 {
		return junitSuite{}, fmt.Errorf("%s has %d test suites, want 1", path, len(s.Suites))
	}
	return s.Suites[0], nil
}

// conformanceBinary returns the conformance suite binary from the tool cache, building it there (as scripts/setup.sh
// does) when it is missing or was built from another version.
func conformanceBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(toolDir, "conformance")
	stamp := filepath.Join(toolDir, ".conformance.version")
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == conformanceModule {
		if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
			return bin
		}
	}
	goBin := needTool(t, "go")
	work := t.TempDir()
	dl := exec.Command(goBin, "mod", "download", "-json", conformanceModule)
	dl.Dir = work
	dl.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	js, err := dl.Output()
	if err != nil {
		t.Fatalf("downloading %s: %v", conformanceModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(js, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("reading go mod download output for %s: %v", conformanceModule, err)
	}
	src := filepath.Join(work, "conformance")
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		t.Fatalf("copying the conformance suite source: %v", err)
	}
	if err := os.MkdirAll(toolDir, 0o755); err != nil {
		t.Fatalf("creating %s: %v", toolDir, err)
	}
	tmp := bin + ".tmp"
	build := exec.Command(goBin, "build", "-o", tmp, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatalf("installing the conformance suite: %v", err)
	}
	if err := os.WriteFile(stamp, []byte(conformanceModule+"\n"), 0o644); err != nil {
		t.Fatalf("writing %s: %v", stamp, err)
	}
	return bin
}

// leaked reports whether secret appears in any file under dir.
func leaked(dir, secret string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), secret) {
			found = true
		}
		return nil
	})
	return found
}

// redact replaces every occurrence of the given secrets in s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
