package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewRefusesBadHtpasswdFile starts a server on an htpasswd file with a line it cannot use: New returns an error
// naming the line (it used to panic closing a nil access controller), and the error holds no hash.
func TestNewRefusesBadHtpasswdFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.Htpasswd = filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(cfg.Htpasswd, []byte("carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg)
	if err == nil {
		srv.closeAll()
		t.Fatal("New accepted an htpasswd file with an MD5 line")
	}
	want := `configuring authentication: loading htpasswd file for registry-kit access controller: parsing htpasswd file ` +
		cfg.Htpasswd + `: line 1: user "carol": password hash uses Apache MD5 ($apr1$); only bcrypt is supported`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New = %q, want it to start with %q", err, want)
	}
	if strings.Contains(err.Error(), "BJqWWEGh6") {
		t.Error("the error contains the hash")
	}
}
