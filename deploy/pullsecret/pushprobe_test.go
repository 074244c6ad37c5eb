package pullsecret

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/internal/lockedbuf"
	"github.com/registry-kit/registry-kit/registry"
)

// TestCanPush runs the probe against a real registry-kit server with an access policy.
func TestCanPush(t *testing.T) {
	dir := t.TempDir()
	cfg := registry.DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir = "127.0.0.1:0", "", filepath.Join(dir, "data")
	cfg.Htpasswd = filepath.Join(dir, "htpasswd")
	cfg.AccessPolicy = filepath.Join(dir, "policy.yaml")
	for _, u := range []string{"admin", "puller", "pusher"} {
		if _, err := htpasswd.AddUser(cfg.Htpasswd, u, u+"-pw", 4); err != nil {
			t.Fatal(err)
		}
	}
	policy := "rules:\n  - users: [admin]\n    repos: ['**']\n    actions: ['*']\n" +
		"  - users: [puller]\n    repos: ['**']\n    actions: [pull]\n" +
		"  - users: [pusher]\n    repos: ['**']\n    actions: [pull, push]\n"
	if err := os.WriteFile(cfg.AccessPolicy, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedbuf.Buffer
	srv, err := registry.New(cfg, registry.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	server := srv.Addr().String()

	tests := []struct {
		user, password string
		want           bool
	}{
		{"admin", "admin-pw", true},
		{"pusher", "pusher-pw", true},
		{"puller", "puller-pw", false},
		{"puller", "wrong", false},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.password, func(t *testing.T) {
			got, err := CanPush(context.Background(), server, tt.user, tt.password, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CanPush(%s) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	// The probes left no upload behind: each was cancelled (distribution v3.1.2 leaves an empty hash state
	// directory after a cancel; the upload's data and start time are gone).
	time.Sleep(50 * time.Millisecond)
	uploads := filepath.Join(cfg.DataDir, "docker", "registry", "v2", "repositories", ProbeRepository, "_uploads")
	_ = filepath.WalkDir(uploads, func(p string, d os.DirEntry, err error) error {
		if err == nil && (d.Name() == "data" || d.Name() == "startedat") {
			t.Errorf("an upload the probe started is still there: %s", p)
		}
		return nil
	})
	if _, err := CanPush(context.Background(), "127.0.0.1:1", "a", "b", nil); err == nil {
		t.Error("a registry that does not answer gave no error")
	}
}
