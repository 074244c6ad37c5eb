package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/registry"
)

// TestPullSecretWarnsAboutPushCredentials runs pull-secret create (-o yaml, no cluster) against a real registry:
// admin credentials get the warning, the pull-only user's do not.
func TestPullSecretWarnsAboutPushCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := registry.DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir = "127.0.0.1:0", "", filepath.Join(dir, "data")
	cfg.Htpasswd = filepath.Join(dir, "htpasswd")
	for user, role := range map[string]string{"admin": "admin", "puller": "pull"} {
		if _, err := htpasswd.AddUser(cfg.Htpasswd, user, user+"-pw", 4); err != nil {
			t.Fatal(err)
		}
		if err := access.EditFile(access.DefaultPath(cfg.Htpasswd), user, role, []string{"**"}); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := registry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	server := srv.Addr().String()

	for _, tt := range []struct {
		user string
		warn bool
	}{{"admin", true}, {"puller", false}} {
		t.Run(tt.user, func(t *testing.T) {
			_, stderr, err := runCLI(t, tt.user+"-pw\n", "pull-secret", "create", "regcred", "--server", server,
				"--username", tt.user, "--password-stdin", "-n", "apps", "-o", "yaml")
			if err != nil {
				t.Fatal(err)
			}
			want := `Warning: user "` + tt.user + `" can push to ` + server
			if got := strings.Contains(stderr, want); got != tt.warn {
				t.Errorf("warning shown = %v, want %v; stderr:\n%s", got, tt.warn, stderr)
			}
			if strings.Contains(stderr, tt.user+"-pw") {
				t.Error("the password reached stderr")
			}
			if strings.Contains(stderr, "could not check") {
				t.Errorf("the probe failed: %s", stderr)
			}
		})
	}
	_ = os.Remove(cfg.Htpasswd)
}
