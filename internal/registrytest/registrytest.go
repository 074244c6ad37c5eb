// Package registrytest runs a real registry-kit server (package registry, with htpasswd users and an optional
// access policy) on loopback for the tests of other packages, the way net/http/httptest runs an HTTP server.
package registrytest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/registry"
)

// Options say what the server is started with.
type Options struct {
	// Users are the htpasswd users, name to password (bcrypt cost 4: these are tests).
	Users map[string]string
	// Policy is the access policy YAML (auth/access); empty for none.
	Policy string
	// Configure, when set, changes the configuration last (deletes on, a GC interval, ...).
	Configure func(*registry.Config)
	// Logger gets the server's log (default: discarded).
	Logger *slog.Logger
}

// Server is a running registry-kit server.
type Server struct {
	// Host is its host:port on 127.0.0.1.
	Host string
	// DataDir is its storage directory.
	DataDir string
	// Registry is the server itself.
	Registry *registry.Server
}

// Start serves a registry-kit with o on a free loopback port until the test ends.
func Start(t testing.TB, o Options) Server {
	t.Helper()
	dir := t.TempDir()
	cfg := registry.DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir = "127.0.0.1:0", "", filepath.Join(dir, "data")
	cfg.Htpasswd = filepath.Join(dir, "htpasswd")
	for user, password := range o.Users {
		if _, err := htpasswd.AddUser(cfg.Htpasswd, user, password, 4); err != nil {
			t.Fatal(err)
		}
	}
	if o.Policy != "" {
		cfg.AccessPolicy = filepath.Join(dir, "access-policy.yaml")
		if err := os.WriteFile(cfg.AccessPolicy, []byte(o.Policy), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	var opts []registry.Option
	if o.Logger != nil {
		opts = append(opts, registry.WithLogger(o.Logger))
	}
	srv, err := registry.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return Server{Host: srv.Addr().String(), DataDir: cfg.DataDir, Registry: srv}
}
