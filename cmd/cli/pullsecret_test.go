package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

const pullSecretTestPassword = "cli-Pa55-word" // fake; must never show up in an error

// The test binary doubles as a docker credential helper when invoked as docker-credential-clistub.
func init() {
	if filepath.Base(os.Args[0]) != "docker-credential-clistub" {
		return
	}
	in, _ := io.ReadAll(os.Stdin)
	if len(os.Args) == 2 && os.Args[1] == "get" && strings.TrimSpace(string(in)) == "127.0.0.1:5000" {
		fmt.Printf(`{"ServerURL":"127.0.0.1:5000","Username":"helperuser","Secret":%q}`+"\n", pullSecretTestPassword)
		os.Exit(0)
	}
	fmt.Println("credentials not found in native keychain")
	os.Exit(1)
}

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func decodeSecret(t *testing.T, doc string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
		t.Fatalf("output is not a Secret: %v\n%s", err, doc)
	}
	return &s
}

func TestPullSecretCreateOutput(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "docker-credential-clistub")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	writeConfig := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := writeConfig("plain.json", `{"auths":{"http://127.0.0.1:5000":{"auth":"`+dockerconfig.EncodeAuth("plainuser", pullSecretTestPassword)+`"}}}`)
	helper := writeConfig("helper.json", `{"auths":{"127.0.0.1:5000":{}},"credsStore":"clistub"}`)
	dockerDir := filepath.Join(dir, "dockerdir")
	if err := os.Mkdir(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(`{"credHelpers":{"127.0.0.1:5000":"clistub"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerDir)

	want := func(user string) []byte {
		b, err := dockerconfig.Build(dockerconfig.Entry{Server: "127.0.0.1:5000", Username: user, Password: pullSecretTestPassword})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantUser  string
		wantNS    string
		wantNotes string
	}{
		{
			name:     "flags, password on stdin",
			stdin:    pullSecretTestPassword + "\n",
			args:     []string{"--server", "127.0.0.1:5000", "--username", "ciuser", "--password-stdin", "-n", "apps"},
			wantUser: "ciuser", wantNS: "apps", wantNotes: "port must match exactly",
		},
		{
			name:     "URL server normalized",
			stdin:    pullSecretTestPassword,
			args:     []string{"--server", "https://127.0.0.1:5000/v2/", "--username", "ciuser", "--password-stdin"},
			wantUser: "ciuser", wantNotes: "dropped the scheme https://",
		},
		{name: "docker config, plain auths", args: []string{"--from-docker-config=" + plain, "--server", "127.0.0.1:5000"}, wantUser: "plainuser"},
		{name: "docker config, path as next argument", args: []string{"--from-docker-config", plain, "--server", "127.0.0.1:5000"}, wantUser: "plainuser"},
		{name: "docker config, credsStore helper", args: []string{"--from-docker-config=" + helper, "--server", "127.0.0.1:5000"}, wantUser: "helperuser"},
		{name: "default docker config, credHelpers", args: []string{"--from-docker-config", "--server", "127.0.0.1:5000"}, wantUser: "helperuser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"pull-secret", "create", "regcred"}, tt.args...)
			stdout, stderr, err := runCLI(t, tt.stdin, append(args, "-o", "yaml")...)
			if err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr)
			}
			s := decodeSecret(t, stdout)
			if s.Name != "regcred" || s.Namespace != tt.wantNS || s.Type != corev1.SecretTypeDockerConfigJson {
				t.Errorf("secret %s/%s type %s", s.Namespace, s.Name, s.Type)
			}
			if diff := cmp.Diff(string(want(tt.wantUser)), string(s.Data[corev1.DockerConfigJsonKey])); diff != "" {
				t.Errorf(".dockerconfigjson (-want +got):\n%s", diff)
			}
			if !strings.Contains(stderr, tt.wantNotes) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantNotes)
			}
		})
	}
}

func TestPullSecretCreateJSONList(t *testing.T) {
	stdout, _, err := runCLI(t, "pw\n", "pull-secret", "create", "regcred", "--server", "docker.io", "--username", "u", "--password-stdin", "-n", "a,b", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string          `json:"kind"`
		Items []corev1.Secret `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "List" || len(list.Items) != 2 || list.Items[0].Namespace != "a" || list.Items[1].Namespace != "b" {
		t.Fatalf("got %+v", list)
	}
	if got := string(list.Items[0].Data[".dockerconfigjson"]); !strings.Contains(got, `"https://index.docker.io/v1/"`) {
		t.Errorf("docker hub key missing: %s", got)
	}
}

func TestPullSecretCreateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"auths":{"127.0.0.1:5000":{"password":"`+pullSecretTestPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"auths":{"other:1":{"auth":"`+dockerconfig.EncodeAuth("u", pullSecretTestPassword)+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stdin string
		args        []string
		wantErr     string
	}{
		{name: "no server", stdin: "pw", args: []string{"--username", "u", "--password-stdin"}, wantErr: "--server is required"},
		{name: "no password", args: []string{"--server", "r:1", "--username", "u"}, wantErr: "no password: pipe it to --password-stdin"},
		{name: "empty stdin", args: []string{"--server", "r:1", "--username", "u", "--password-stdin"}, wantErr: "stdin held no password"},
		{name: "both password flags", stdin: "pw", args: []string{"--server", "r:1", "--username", "u", "--password-stdin", "--password", "x"}, wantErr: "not both"},
		{name: "bad server", stdin: "pw", args: []string{"--server", "oci://r", "--username", "u", "--password-stdin"}, wantErr: `scheme "oci" is not http or https`},
		{name: "bad output", stdin: "pw", args: []string{"--server", "r:1", "--username", "u", "--password-stdin", "-o", "table"}, wantErr: `--output "table"`},
		{name: "output needs named namespaces", stdin: "pw", args: []string{"--server", "r:1", "--username", "u", "--password-stdin", "-A", "-o", "yaml"}, wantErr: "name them with -n"},
		{name: "malformed docker config", args: []string{"--from-docker-config=" + bad, "--server", "127.0.0.1:5000"}, wantErr: "invalid JSON"},
		{name: "missing docker config", args: []string{"--from-docker-config=" + filepath.Join(dir, "nope.json"), "--server", "r:1"}, wantErr: "no such file"},
		{name: "server not in docker config", args: []string{"--from-docker-config=" + other, "--server", "127.0.0.1:5000"}, wantErr: `no credentials found for "127.0.0.1:5000" in the docker config (it has entries for: "other:1")`},
		{name: "docker config and username", args: []string{"--from-docker-config=" + other, "--server", "other:1", "--username", "u"}, wantErr: "drop --username"},
		{name: "bad secret name", stdin: "pw", args: []string{"--server", "r:1", "--username", "u", "--password-stdin", "-n", "x"}, wantErr: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "regcred"
			if tt.name == "bad secret name" {
				name, tt.wantErr = "Bad_Name", `secret name "Bad_Name"`
				tt.args = append(tt.args, "--kubeconfig", filepath.Join(dir, "no-kubeconfig"))
			} else if !slices.Contains(tt.args, "-o") {
				tt.args = append(tt.args, "-o", "yaml")
			}
			stdout, stderr, err := runCLI(t, tt.stdin, append([]string{"pull-secret", "create", name}, tt.args...)...)
			if err == nil {
				t.Fatalf("no error; stdout %s", stdout)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error()+stdout+stderr, pullSecretTestPassword) {
				t.Error("the password leaked into the output")
			}
		})
	}
}
