package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// runServe runs `registry-kit serve args...` and returns stdout, stderr and the error.
func runServe(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"serve"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func printedConfig(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, _, err := runServe(t, append(args, "--print-config")...)
	if err != nil {
		t.Fatalf("serve --print-config: %v", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("print-config output is not YAML: %v\n%s", err, out)
	}
	return m
}

func TestServePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("addr: file:1\nrealm: from-file\nlog-level: warn\nshutdown-grace: 7s\ndelete-enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want map[string]any // subset of the printed config
	}{
		{
			name: "defaults",
			args: []string{"--data-dir", dir},
			want: map[string]any{"addr": ":5000", "metrics-addr": ":5001", "realm": "registry-kit", "log-level": "info",
				"shutdown-grace": "25s", "delete-enabled": false, "htpasswd": filepath.Join(dir, "htpasswd"), "no-auth": false},
		},
		{
			name: "file over defaults",
			args: []string{"--data-dir", dir, "--config", file},
			want: map[string]any{"addr": "file:1", "realm": "from-file", "log-level": "warn", "shutdown-grace": "7s", "delete-enabled": true},
		},
		{
			name: "env over file",
			env:  map[string]string{"REGISTRY_KIT_ADDR": "env:2", "REGISTRY_KIT_SHUTDOWN_GRACE": "9s", "REGISTRY_KIT_DELETE_ENABLED": "false"},
			args: []string{"--data-dir", dir, "--config", file},
			want: map[string]any{"addr": "env:2", "realm": "from-file", "shutdown-grace": "9s", "delete-enabled": false},
		},
		{
			name: "flags over env",
			env:  map[string]string{"REGISTRY_KIT_ADDR": "env:2", "REGISTRY_KIT_REALM": "from-env"},
			args: []string{"--data-dir", dir, "--config", file, "--addr", "flag:3", "--shutdown-grace", "11s"},
			want: map[string]any{"addr": "flag:3", "realm": "from-env", "shutdown-grace": "11s", "log-level": "warn"},
		},
		{
			name: "config file from env, data dir from env",
			env:  map[string]string{"REGISTRY_KIT_CONFIG": file, "REGISTRY_KIT_DATA_DIR": filepath.Join(dir, "d")},
			want: map[string]any{"addr": "file:1", "data-dir": filepath.Join(dir, "d"), "htpasswd": filepath.Join(dir, "d", "htpasswd")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			m := printedConfig(t, tt.args...)
			got := map[string]any{}
			for k := range tt.want {
				got[k] = m[k]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("effective config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServePrintConfigRedactsSecret(t *testing.T) {
	t.Setenv("REGISTRY_KIT_HTTP_SECRET", "hunter2-shared-secret")
	out, _, err := runServe(t, "--data-dir", t.TempDir(), "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatal("print-config shows the http secret")
	}
	if !strings.Contains(out, "http-secret: REDACTED") {
		t.Errorf("print-config does not say the secret is set:\n%s", out)
	}
	if strings.Contains(out, "print-config") || strings.HasPrefix(out, "config:") || strings.Contains(out, "\nconfig:") {
		t.Errorf("print-config output has keys that are not configuration:\n%s", out)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	badKey := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badKey, []byte("adr: :5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "unknown key in file", args: []string{"--config", badKey}, want: `config: unknown key "adr" in ` + badKey},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml")},
			want: "reading config file: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{name: "bad duration in env", env: map[string]string{"REGISTRY_KIT_SHUTDOWN_GRACE": "soon"},
			want: "invalid configuration:\nshutdown-grace: \"soon\" is not a duration such as 30s or 2h"},
		{name: "bad bool in env", env: map[string]string{"REGISTRY_KIT_NO_AUTH": "maybe"},
			want: "invalid configuration:\nno-auth: \"maybe\" is not true or false"},
		{name: "validation names keys", args: []string{"--addr", ":99999", "--tls-key", "k.pem", "--metrics-addr", ""},
			want: "invalid configuration:\naddr: port 99999 out of range\ntls: tls-key given without tls-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, _, err := runServe(t, append([]string{"--data-dir", dir}, tt.args...)...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServeRunsAndStops(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	errOut := &lockedbuf.Buffer{}
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: errOut})
	root.SetArgs([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--metrics-addr", "", "--log-format", "json"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errOut.String(), `"msg":"registry serving"`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start; stderr:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	stderr := errOut.String()
	if !strings.Contains(stderr, "-u admin --password-stdin < "+filepath.Join(dir, "admin-password")) {
		t.Errorf("stderr lacks the docker login line:\n%s", stderr)
	}
	if strings.Contains(stderr, strings.TrimSpace(string(pw))) {
		t.Error("the admin password was printed")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	if !strings.Contains(errOut.String(), `"msg":"shut down cleanly"`) {
		t.Errorf("no clean shutdown logged:\n%s", errOut.String())
	}
}
