package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		c := DefaultConfig()
		c.Addr, c.MetricsAddr, c.DataDir = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "data")
		c.MetricsAddr = "127.0.0.1:9999"
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // errors, one per line; "" means valid
	}{
		{name: "defaults are valid", mutate: func(*Config) {}},
		{name: "metrics off", mutate: func(c *Config) { c.MetricsAddr = "" }},
		{name: "secret file", mutate: func(c *Config) { c.HTTPSecretFile = secret }},
		{name: "manifest cache off", mutate: func(c *Config) { c.ManifestCacheMB = 0 }},
		{name: "negative manifest cache", mutate: func(c *Config) { c.ManifestCacheMB = -1 }, want: "manifest-cache-mb: must not be negative, got -1"},
		{name: "port out of range", mutate: func(c *Config) { c.Addr = ":99999" }, want: "addr: port 99999 out of range"},
		{name: "port not a number", mutate: func(c *Config) { c.Addr = "localhost:http5" }, want: `addr: port "http5" is not a number`},
		{name: "no port", mutate: func(c *Config) { c.Addr = "localhost" }, want: `addr: "localhost" is not HOST:PORT`},
		{name: "empty addr", mutate: func(c *Config) { c.Addr = "" }, want: "addr: must not be empty"},
		{name: "bad metrics port", mutate: func(c *Config) { c.MetricsAddr = ":-1" }, want: "metrics-addr: port -1 out of range"},
		{name: "metrics on addr", mutate: func(c *Config) { c.Addr, c.MetricsAddr = ":5000", ":5000" },
			want: "metrics-addr: must differ from addr (:5000)"},
		{name: "tls key without cert", mutate: func(c *Config) { c.TLSKey = "k.pem" }, want: "tls: tls-key given without tls-cert"},
		{name: "tls cert without key", mutate: func(c *Config) { c.TLSCert = "c.pem" }, want: "tls: tls-cert given without tls-key"},
		{name: "tls files missing", mutate: func(c *Config) { c.TLSCert, c.TLSKey = "/nonexistent/c.pem", "/nonexistent/k.pem" },
			want: "tls: loading tls-cert /nonexistent/c.pem and tls-key /nonexistent/k.pem: open /nonexistent/c.pem: no such file or directory"},
		{name: "data dir under a file", mutate: func(c *Config) { c.DataDir = filepath.Join(file, "data") },
			want: "data-dir: " + file + "/data is not writable: " + file + " is not a directory"},
		{name: "empty data dir", mutate: func(c *Config) { c.DataDir = "" }, want: "data-dir: must not be empty"},
		{name: "htpasswd is a directory", mutate: func(c *Config) { c.Htpasswd = dir },
			want: "htpasswd: " + dir + " is a directory"},
		{name: "htpasswd unreadable", mutate: func(c *Config) { c.Htpasswd = filepath.Join(file, "htpasswd") },
			want: "htpasswd: open " + file + "/htpasswd: not a directory"},
		{name: "htpasswd ignored without auth", mutate: func(c *Config) { c.NoAuth, c.Htpasswd = true, dir }},
		{name: "log level", mutate: func(c *Config) { c.LogLevel = "verbose" },
			want: `log-level: unknown level "verbose" (want debug, info, warn or error)`},
		{name: "log format", mutate: func(c *Config) { c.LogFormat = "xml" }, want: `log-format: unknown format "xml" (want text or json)`},
		{name: "secret file missing", mutate: func(c *Config) { c.HTTPSecretFile = "/nonexistent/s" },
			want: "http-secret-file: open /nonexistent/s: no such file or directory"},
		{name: "secret file empty", mutate: func(c *Config) { c.HTTPSecretFile = empty }, want: "http-secret-file: " + empty + " is empty"},
		{name: "secret twice", mutate: func(c *Config) { c.HTTPSecretFile, c.HTTPSecret = secret, "x" },
			want: "http-secret-file: set together with http-secret; give only one"},
		{name: "empty realm", mutate: func(c *Config) { c.Realm = "" }, want: "realm: must not be empty"},
		{name: "quote in realm", mutate: func(c *Config) { c.Realm = `a"b` }, want: "realm: must not contain quotes, backslashes or line breaks"},
		{name: "negative grace", mutate: func(c *Config) { c.ShutdownGrace = -time.Second }, want: "shutdown-grace: must not be negative, got -1s"},
		{name: "purge interval", mutate: func(c *Config) { c.UploadPurgeInterval = 0 },
			want: "upload-purge-interval: must be positive when upload-purge-age is set, got 0s"},
		{name: "every problem at once", mutate: func(c *Config) { c.Addr, c.TLSKey, c.LogLevel = ":70000", "k", "loud" },
			want: "addr: port 70000 out of range\ntls: tls-key given without tls-cert\n" +
				`log-level: unknown level "loud" (want debug, info, warn or error)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateUnreadableHtpasswdAsNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads any file; the same open() error path is covered by "htpasswd unreadable" above.
		t.Log("running as root: permission bits do not apply, checking the not-a-directory variant instead")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(p, []byte("admin:x\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Addr, c.MetricsAddr, c.DataDir, c.Htpasswd = "127.0.0.1:0", "", dir, p
	err := c.Validate()
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("root can read %s, Validate() = %v", p, err)
		}
		return
	}
	want := "htpasswd: open " + p + ": permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
}

func TestRedacted(t *testing.T) {
	c := DefaultConfig()
	c.DataDir, c.HTTPSecret = "/d", "very-secret"
	r := c.Redacted()
	if strings.Contains(r.HTTPSecret, "very-secret") || r.HTTPSecret != "REDACTED" {
		t.Errorf("Redacted().HTTPSecret = %q, want REDACTED", r.HTTPSecret)
	}
	if r.Htpasswd != "/d/htpasswd" {
		t.Errorf("Redacted().Htpasswd = %q, want the derived /d/htpasswd", r.Htpasswd)
	}
	if c.HTTPSecret != "very-secret" {
		t.Error("Redacted changed the receiver")
	}
	if (Config{}).Redacted().HTTPSecret != "" {
		t.Error("an empty secret should stay empty, so print-config shows it is unset")
	}
}

func TestLoginHost(t *testing.T) {
	tests := []struct{ name, addr, want string }{
		{name: "wildcard v4", addr: "0.0.0.0:5000", want: "localhost:5000"},
		{name: "wildcard v6", addr: "[::]:5000", want: "localhost:5000"},
		{name: "loopback", addr: "127.0.0.1:5055", want: "127.0.0.1:5055"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, loginHost(fakeAddr(tt.addr))); diff != "" {
				t.Error(diff)
			}
		})
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

func TestFallbackDataDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unwritable := filepath.Join(file, "registry") // under a regular file: not writable, even for root
	tests := []struct {
		name, preferred, xdg, home string
		want                       string
		wantOK                     bool
	}{
		{name: "preferred usable", preferred: filepath.Join(dir, "data"), xdg: "/xdg"},
		{name: "xdg", preferred: unwritable, xdg: "/xdg", want: "/xdg/registry-kit", wantOK: true},
		{name: "home", preferred: unwritable, home: "/home/u", want: "/home/u/.local/share/registry-kit", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, ok := fallbackDataDir(tt.preferred)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("fallbackDataDir(%s) = %q, %v; want %q, %v", tt.preferred, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
