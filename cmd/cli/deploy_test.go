package cli

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/deploy"
)

// TestDeployFlagErrors: bad flags are refused, naming the flag, before any cluster is contacted (the kubeconfig
// here points at nothing).
func TestDeployFlagErrors(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "missing")
	overlay := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"dry-run value", []string{"deploy", "--dry-run=true"}, []string{`invalid --dry-run "true"`}},
		{"output format", []string{"deploy", "-o", "json"}, []string{`--output "json": only yaml`}},
		{"timeout", []string{"deploy", "--timeout", "0s"}, []string{"--timeout 0s: must be positive"}},
		{"address", []string{"deploy", "--address", "nohost"}, []string{`--address "nohost": want HOST:PORT`}},
		{"generator options with -k", []string{"deploy", "-k", overlay, "--image", "x:1", "--rotate-password"},
			[]string{"--image: cannot be combined with -k", "--rotate-password: cannot be combined with -k"}},
		{"-k not a directory", []string{"deploy", "-k", filepath.Join(overlay, "nope")}, []string{"not a directory"}},
		{"generator validation", []string{"deploy", "--replicas", "2", "--service-type", "Headless"},
			[]string{"--replicas 2", `--service-type "Headless"`}},
		{"several at once", []string{"deploy", "--dry-run=x", "--storage-size", "lots"}, []string{"--dry-run", `--storage-size "lots"`}},
		{"undeploy dry-run value", []string{"undeploy", "--dry-run=yes"}, []string{`invalid --dry-run "yes"`}},
		{"expose value", []string{"deploy", "--expose", "ingress"}, []string{`--expose "ingress": want one of auto, nodeport-localhost, node-proxy, tls`}},
		{"force without nodeport-localhost", []string{"deploy", "--force"}, []string{"--force: only applies with --expose nodeport-localhost"}},
		{"node proxy port", []string{"deploy", "--expose", "node-proxy", "--node-proxy-port", "70000"}, []string{"--node-proxy-port 70000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", append(tc.args, "--kubeconfig", kubeconfig)...)
			if err == nil {
				t.Fatalf("registry-kit %s: no error", strings.Join(tc.args, " "))
			}
			if strings.Contains(err.Error(), "kubeconfig") {
				t.Fatalf("flags were not validated before loading the kubeconfig: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestDeployPrintRBAC: --print-rbac prints the Role and ClusterRole for the namespace -n names (the registry's
// default namespace without -n), and refuses a name no namespace can have.
func TestDeployPrintRBAC(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ns   string
	}{
		{"default namespace", nil, "docker-registry"},
		{"-n", []string{"-n", "shop"}, "shop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCLI(t, "", append([]string{"deploy", "--print-rbac"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			want, err := deploy.RBACFor(tc.ns)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("--print-rbac (-want +got):\n%s", diff)
			}
			for _, w := range []string{"kind: Role\n", "kind: ClusterRole\n", "namespace: " + tc.ns + "\n", "kubectl create rolebinding"} {
				if !strings.Contains(out, w) {
					t.Errorf("--print-rbac lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if _, _, err := runCLI(t, "", "deploy", "--print-rbac", "-n", "Not_A_Namespace"); err == nil || !strings.Contains(err.Error(), `namespace "Not_A_Namespace"`) {
		t.Errorf("--print-rbac -n Not_A_Namespace: %v, want an error naming the namespace", err)
	}
}

// TestDeployUnreachableCluster: a kubeconfig whose API server is not listening gives an error that says so.
func TestDeployUnreachableCluster(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:" + port + "'}\n" +
		"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"deploy", "undeploy"} {
		t.Run(cmd, func(t *testing.T) {
			_, _, err := runCLI(t, "", cmd, "--kubeconfig", kc)
			if !errors.Is(err, deploy.ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:"+port) {
				t.Fatalf("%s against a closed port: %v, want ErrUnreachable naming the server", cmd, err)
			}
		})
	}
}
