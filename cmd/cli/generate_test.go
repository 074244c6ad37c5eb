package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// runGenerate runs `registry-kit generate args...` with stdin and returns stdout, stderr and the error.
func runGenerate(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return runCLI(t, stdin, append([]string{"generate"}, args...)...)
}

// decodeStream decodes a ---separated YAML stream into typed objects.
func decodeStream(t *testing.T, stream string) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, doc := range strings.Split(stream, "\n---\n") {
		o, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decoding generated YAML: %v", err)
		}
		objs = append(objs, o)
	}
	return objs
}

func htpasswdOf(t *testing.T, objs []runtime.Object) *htpasswd.File {
	t.Helper()
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && strings.HasSuffix(s.Name, "-htpasswd") {
			f, err := htpasswd.Parse(bytes.NewReader(s.Data["htpasswd"]))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no htpasswd Secret in the output")
	return nil
}

func kinds(objs []runtime.Object) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.GetObjectKind().GroupVersionKind().Kind)
	}
	return k
}

func TestGenerateGeneratesAdminOnce(t *testing.T) {
	out, errOut, err := runGenerate(t, "", "--bcrypt-cost", "4")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStream(t, out)
	want := []string{"Namespace", "Secret", "Secret", "Secret", "PersistentVolumeClaim", "Service", "Deployment"}
	if diff := cmp.Diff(want, kinds(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	m := regexp.MustCompile(`Generated registry user "admin" with password: ([0-9a-f]+)\n`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatal("stderr does not announce the generated admin password")
	}
	pw := m[1]
	if strings.Count(errOut, pw) != 1 || strings.Contains(out, pw) {
		t.Error("the generated password must appear exactly once, on stderr only")
	}
	if !htpasswdOf(t, objs).Verify("admin", pw) {
		t.Error("the printed password does not match the htpasswd Secret")
	}
}

func TestGenerateUserFromStdin(t *testing.T) {
	const pw = "alice-stdin-password"
	out, errOut, err := runGenerate(t, pw+"\n", "--user", "alice", "--password-stdin", "--bcrypt-cost", "4")
	if err != nil {
		t.Fatal(err)
	}
	if errOut != "" || strings.Contains(out, pw) {
		t.Error("a given password must not be printed anywhere")
	}
	f := htpasswdOf(t, decodeStream(t, out))
	if !f.Verify("alice", pw) || f.Has("admin") {
		t.Error("the Secret must hold alice with the stdin password and no generated admin")
	}
}

func TestGenerateJSONAndFiles(t *testing.T) {
	dir := t.TempDir()
	ht := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(ht, []byte("bob:$2y$05$izlOHKQiRY3YyxX3dASF/ONGTBFYBEGF44wpVWdA/gQpO8EHepdB2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "http-secret")
	if err := os.WriteFile(secret, []byte("shared-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _, err := runGenerate(t, "", "-o", "json", "--htpasswd-file", ht, "--http-secret-file", secret)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Kind != "List" || len(list.Items) != 7 {
		t.Fatalf("-o json: want a v1 List of 7 items, got kind %q with %d items (err %v)", list.Kind, len(list.Items), err)
	}

	outDir := filepath.Join(dir, "out")
	stdout, _, err := runGenerate(t, "", "--output-dir", outDir, "--htpasswd-file", ht, "--http-secret-file", secret)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "" {
		t.Errorf("--output-dir wrote to stdout: %q", stdout)
	}
	wantModes := map[string]os.FileMode{
		"kustomization.yaml":                  0o644,
		"namespace-docker-registry.yaml":      0o644,
		"secret-registry-htpasswd.yaml":       0o600,
		"secret-registry-http-secret.yaml":    0o600,
		"secret-registry-puller.yaml":         0o600,
		"persistentvolumeclaim-registry.yaml": 0o644,
		"service-registry.yaml":               0o644,
		"deployment-registry.yaml":            0o644,
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	gotModes := map[string]os.FileMode{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		gotModes[e.Name()] = fi.Mode().Perm()
	}
	if diff := cmp.Diff(wantModes, gotModes); diff != "" {
		t.Errorf("output directory files and modes (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(filepath.Join(outDir, "secret-registry-http-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStream(t, string(b))
	if got := string(objs[0].(*corev1.Secret).Data["secret"]); got != "shared-secret" {
		t.Errorf("HTTP secret from --http-secret-file has %d bytes, want the file's line without its newline", len(got))
	}
}

// TestGenerateRefusesBadInput: every invalid combination fails with errors naming the flags, and nothing is
// written: not to stdout, not to --output-dir.
func TestGenerateRefusesBadInput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{
			name: "rwo with replicas",
			args: []string{"--replicas", "3"},
			want: []string{"--replicas 3: a ReadWriteOnce volume attaches to one node, so only one registry pod can use it; " +
				"use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage"},
		},
		{
			name: "zero replicas",
			args: []string{"--replicas", "0"},
			want: []string{"--replicas 0: must be 1 or more"},
		},
		{
			name: "quantities and node port",
			args: []string{"--storage-size", "10GB", "--limits", "memory=lots", "--service-type", "NodePort", "--node-port", "80"},
			want: []string{
				`--storage-size "10GB": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
				`--limits memory="lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
				"--node-port 80: must be in the node port range 30000-32767",
			},
		},
		{
			name: "user without stdin",
			args: []string{"--user", "alice"},
			want: []string{`--user "alice": needs --password-stdin (passwords are never taken from flags)`},
		},
		{
			name: "stdin without user",
			args: []string{"--password-stdin"},
			want: []string{"--password-stdin: needs --user"},
		},
		{
			name: "empty stdin",
			args: []string{"--user", "alice", "--password-stdin"},
			want: []string{"--password-stdin: no password on standard input"},
		},
		{
			name: "output format",
			args: []string{"-o", "xml"},
			want: []string{`--output "xml": must be yaml or json`},
		},
		{
			name: "output with output dir",
			args: []string{"-o", "json", "--output-dir", "DIR"},
			want: []string{"--output: cannot be combined with --output-dir (which writes YAML files)"},
		},
		{
			name: "missing htpasswd file",
			args: []string{"--htpasswd-file", "DIR/nope"},
			want: []string{"--htpasswd-file: reading open DIR/nope: no such file or directory"},
		},
		{
			name: "existing claim with size",
			args: []string{"--existing-claim", "data", "--storage-size", "5Gi", "--storage-class", "fast"},
			want: []string{
				"--storage-class: only applies to a claim registry-kit creates, not with --existing-claim",
				"--storage-size: only applies to a claim registry-kit creates, not with --existing-claim",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			outDir := filepath.Join(dir, "out")
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", outDir))
			}
			if !strings.Contains(strings.Join(tc.args, " "), "--output-dir") {
				args = append(args, "--output-dir", outDir)
			}
			out, errOut, err := runGenerate(t, tc.stdin, args...)
			if err == nil {
				t.Fatal("generate accepted invalid input")
			}
			want := strings.ReplaceAll(strings.Join(tc.want, "\n"), "DIR", outDir)
			if diff := cmp.Diff(want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if out != "" || errOut != "" {
				t.Errorf("output written although the input is invalid: stdout %d bytes, stderr %d bytes", len(out), len(errOut))
			}
			if _, err := os.Stat(outDir); !os.IsNotExist(err) {
				t.Errorf("--output-dir was created although the input is invalid (stat: %v)", err)
			}
		})
	}
}

// TestGeneratePlainHTTPWarning: generate warns on standard error (never in the manifests) when registry passwords
// would travel in plain HTTP over a network: a node port, an Ingress without TLS.
func TestGeneratePlainHTTPWarning(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr's Warning lines; nil: no warning
	}{
		{"ClusterIP", nil, nil},
		{"NodePort", []string{"--service-type", "NodePort", "--node-port", "30500"}, []string{"Warning: service/registry serves plain HTTP on node port 30500"}},
		{"NodePort with TLS", []string{"--service-type", "NodePort", "--tls-secret", "registry-tls"}, nil},
		{"Ingress without TLS", []string{"--ingress-host", "registry.example"}, []string{"Warning: ingress/registry has no TLS for registry.example"}},
		{"Ingress with TLS", []string{"--ingress-host", "registry.example", "--ingress-tls-secret", "tls"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runGenerate(t, "pw\n", append([]string{"--user", "alice", "--password-stdin", "--bcrypt-cost", "4"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(errOut, "\n") {
				if strings.HasPrefix(l, "Warning: ") {
					got = append(got, l)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d:\n%s", got, len(tc.want), errOut)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
			if strings.Contains(out, "Warning") {
				t.Errorf("the warning went into the manifests:\n%s", out)
			}
		})
	}
}

// TestGenerateHelmChart: generate --helm-chart of a development build writes exactly the checked-in manifests/chart.
func TestGenerateHelmChart(t *testing.T) {
	setVersion(t, "", "")
	dir := t.TempDir()
	if _, _, err := runGenerate(t, "", "--helm-chart", dir); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join("..", "..", "manifests", "chart")
	var n int
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(want, p)
		w, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Errorf("generate --helm-chart did not write %s: %v", rel, err)
			return nil
		}
		if diff := cmp.Diff(string(w), string(got)); diff != "" {
			t.Errorf("%s (-checked in +generated):\n%s", rel, diff)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walking manifests/chart: %v (%d files)", err, n)
	}
	_, _, err = runGenerate(t, "", "--helm-chart", dir, "--image", "x:y")
	if err == nil || !strings.Contains(err.Error(), "--helm-chart: cannot be combined with --image") {
		t.Errorf("--helm-chart with --image: %v", err)
	}
}
