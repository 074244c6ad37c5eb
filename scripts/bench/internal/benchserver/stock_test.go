package benchserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// authStock and serveStock are the templates the auth and serve drivers had before they shared StockConfig; Render
// must give the same files.
const authStock = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`

const serveStock = `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
  debug:
    addr: %s
    prometheus:
      enabled: true
      path: /metrics
validation:
  manifests:
    urls:
      allow: ['^https?://']
%s`

func TestStockConfigRender(t *testing.T) {
	const authCfg = "auth:\n  htpasswd:\n    realm: bench\n    path: /w/htpasswd\n"
	authBench := StockConfig{RootDir: "/w/data", Addr: "127.0.0.1:5000", Secret: "s3", LogLevel: "warn", Delete: true}
	serveBench := StockConfig{RootDir: "/w/data", Addr: "127.0.0.1:5000", Secret: "s3", LogLevel: "info",
		InmemoryCache: true, NoUploadPurging: true, Nosniff: true, DebugAddr: "127.0.0.1:5001", AllowManifestURLs: true}
	withAuth := func(c StockConfig) StockConfig { c.Htpasswd = "/w/htpasswd"; return c }
	tests := []struct {
		name string
		cfg  StockConfig
		want string
	}{
		{"auth bench, no auth", authBench, fmt.Sprintf(authStock, "/w/data", "127.0.0.1:5000", "s3", "")},
		{"auth bench, auth", withAuth(authBench), fmt.Sprintf(authStock, "/w/data", "127.0.0.1:5000", "s3", authCfg)},
		{"serve bench, auth", withAuth(serveBench),
			fmt.Sprintf(serveStock, "/w/data", "127.0.0.1:5000", "s3", "127.0.0.1:5001", authCfg)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.cfg.Render()); diff != "" {
				t.Errorf("Render() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStockConfigWriteMakesSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := (StockConfig{RootDir: "/d", Addr: "127.0.0.1:1", LogLevel: "warn"}).Write(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret: \n") || !strings.Contains(string(b), "  secret: ") {
		t.Errorf("config has no random http secret:\n%s", b)
	}
}

func TestWriteHtpasswd(t *testing.T) {
	path, user, pass, err := WriteHtpasswd(t.TempDir(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if user != User || len(pass) != 32 {
		t.Errorf("user %q, password of %d chars; want %q and 32", user, len(pass), User)
	}
	ok, err := htpasswd.VerifyUser(path, user, pass)
	if err != nil || !ok {
		t.Errorf("VerifyUser = %v, %v; want the written password to verify", ok, err)
	}
}

func TestServeArgs(t *testing.T) {
	tests := []struct {
		name, htpasswd string
		want           []string
	}{
		{"auth", "/h", []string{"serve", "--addr", "a", "--data-dir", "d", "--metrics-addr", "", "--log-level", "warn", "--htpasswd", "/h"}},
		{"no auth", "", []string{"serve", "--addr", "a", "--data-dir", "d", "--metrics-addr", "", "--log-level", "warn", "--no-auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ServeArgs("a", "d", "", "warn", tt.htpasswd)); diff != "" {
				t.Errorf("ServeArgs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
