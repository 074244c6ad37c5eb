package cli

import (
	"strings"
	"testing"
)

func TestNodeCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"node-proxy on all interfaces", []string{"node-proxy", "--listen", ":29500", "--upstream", "10.0.0.1:5000"}, "must be a loopback address"},
		{"node-proxy without upstream", []string{"node-proxy"}, `--upstream "": want HOST:PORT`},
		{"trust-agent without registry", []string{"nodes", "trust-agent"}, "--registry, --owner and --certs-dir are required"},
		{"trust-agent bad mount", []string{"nodes", "trust-agent", "--registry", "h:1", "--owner", "a/b", "--certs-dir", t.TempDir(), "--certs-mount", "x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", tc.args...)
			if err == nil {
				t.Fatalf("registry-kit %s: no error", strings.Join(tc.args, " "))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}
