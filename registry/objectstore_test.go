package registry

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidateObjectStorage(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("AKEXAMPLE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := func() Config {
		c := DefaultConfig()
		c.Addr, c.MetricsAddr, c.DataDir, c.Htpasswd = "127.0.0.1:0", "", filepath.Join(dir, "data"), keyFile
		c.Storage, c.HTTPSecret = StorageS3, "shared"
		c.S3.Endpoint, c.S3.Secure, c.S3.Bucket, c.S3.ForcePathStyle = "http://127.0.0.1:9000", false, "registry", true
		c.S3.AccessKey, c.S3.SecretKey = "AKEXAMPLE", "do-not-print-me"
		return c
	}
	fs := func() Config {
		c := DefaultConfig()
		c.Addr, c.MetricsAddr, c.DataDir = "127.0.0.1:0", "", filepath.Join(dir, "data")
		return c
	}
	tests := []struct {
		name string
		cfg  func() Config
		want string
	}{
		{name: "s3 with minio endpoint", cfg: s3},
		{name: "s3 with key files", cfg: func() Config {
			c := s3()
			c.S3.AccessKey, c.S3.SecretKey, c.S3.AccessKeyFile, c.S3.SecretKeyFile = "", "", keyFile, keyFile
			return c
		}},
		{name: "s3 with identity credentials and aws", cfg: func() Config {
			c := s3()
			c.S3.Endpoint, c.S3.Secure, c.S3.AccessKey, c.S3.SecretKey = "", true, "", ""
			return c
		}},
		{name: "endpoint without scheme", cfg: func() Config { c := s3(); c.S3.Endpoint = "minio.storage:9000"; return c }},
		{name: "redis", cfg: func() Config { c := s3(); c.Redis = RedisConfig{Addrs: []string{"127.0.0.1:6379"}, DB: 3}; return c }},
		{name: "redis on filesystem", cfg: func() Config { c := fs(); c.Redis.Addrs = []string{"redis:6379"}; return c }},
		{name: "unknown storage", cfg: func() Config { c := fs(); c.Storage = "gcs"; return c },
			want: `storage: unknown storage "gcs" (want filesystem or s3)`},
		{name: "s3 without users", cfg: func() Config { c := s3(); c.Htpasswd = filepath.Join(dir, "missing"); return c },
			want: "htpasswd: " + filepath.Join(dir, "missing") + " does not exist: with storage s3 every replica must read the same " +
				"users, so create the file (registry-kit htpasswd add) instead of letting each replica generate its own admin password"},
		{name: "s3 without users but no auth", cfg: func() Config { c := s3(); c.Htpasswd, c.NoAuth = filepath.Join(dir, "missing"), true; return c }},
		{name: "s3 without shared secret", cfg: func() Config { c := s3(); c.HTTPSecret = ""; return c },
			want: "http-secret-file: " + errUploadUnknown},
		{name: "s3 without bucket", cfg: func() Config { c := s3(); c.S3.Bucket = ""; return c },
			want: "s3-bucket: required with storage s3"},
		{name: "bad bucket", cfg: func() Config { c := s3(); c.S3.Bucket = "My_Bucket"; return c },
			want: `s3-bucket: "My_Bucket" may hold only lower-case letters, digits, '-' and '.'`},
		{name: "no region", cfg: func() Config { c := s3(); c.S3.Region = ""; return c },
			want: "s3-region: required with storage s3 (any value, such as us-east-1, for S3-compatible servers)"},
		{name: "http endpoint with tls on", cfg: func() Config { c := s3(); c.S3.Secure = true; return c },
			want: `s3-endpoint: "http://127.0.0.1:9000" is plain http but s3-secure is true; set s3-secure to false for an endpoint without TLS`},
		{name: "endpoint with bucket path", cfg: func() Config { c := s3(); c.S3.Endpoint = "http://127.0.0.1:9000/registry"; return c },
			want: `s3-endpoint: "http://127.0.0.1:9000/registry" must not have a path or query (the bucket is s3-bucket)`},
		{name: "endpoint with credentials", cfg: func() Config { c := s3(); c.S3.Endpoint = "http://ak:sk@127.0.0.1:9000"; return c },
			want: "s3-endpoint: must not hold credentials (give REGISTRY_KIT_S3_ACCESS_KEY/REGISTRY_KIT_S3_SECRET_KEY or the key files)"},
		{name: "endpoint scheme", cfg: func() Config { c := s3(); c.S3.Endpoint = "ftp://h:1"; return c },
			want: `s3-endpoint: "ftp://h:1": scheme must be http or https`},
		{name: "relative root directory", cfg: func() Config { c := s3(); c.S3.RootDirectory = "registry/../x"; return c },
			want: `s3-root-directory: "registry/../x" must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)`},
		{name: "skip verify without tls", cfg: func() Config { c := s3(); c.S3.SkipVerify = true; return c },
			want: "s3-skip-verify: only applies with s3-secure (TLS is off)"},
		{name: "access key without secret key", cfg: func() Config { c := s3(); c.S3.SecretKey = ""; return c },
			want: "s3-secret-key: missing: s3-access-key is set (give REGISTRY_KIT_S3_SECRET_KEY or s3-secret-key-file)"},
		{name: "secret key without access key", cfg: func() Config { c := s3(); c.S3.AccessKey = ""; return c },
			want: "s3-access-key: missing: s3-secret-key is set (give REGISTRY_KIT_S3_ACCESS_KEY or s3-access-key-file)"},
		{name: "key from env and file", cfg: func() Config { c := s3(); c.S3.SecretKeyFile = keyFile; return c },
			want: "s3-secret-key-file: set together with REGISTRY_KIT_S3_SECRET_KEY; give only one"},
		{name: "empty key file", cfg: func() Config { c := s3(); c.S3.AccessKey, c.S3.AccessKeyFile = "", empty; return c },
			want: "s3-access-key-file: " + empty + " is empty"},
		{name: "s3 keys on filesystem", cfg: func() Config {
			c := fs()
			c.S3.Bucket, c.S3.SkipVerify, c.BlobRedirect = "b", true, true
			return c
		}, want: "blob-redirect: only applies with storage s3 (storage is filesystem)\n" +
			"s3-bucket: only applies with storage s3 (storage is filesystem)\n" +
			"s3-skip-verify: only applies with storage s3 (storage is filesystem)"},
		{name: "bad redis addr", cfg: func() Config { c := s3(); c.Redis.Addrs = []string{"redis"}; return c },
			want: `redis-addr: "redis" is not HOST:PORT`},
		{name: "negative redis db", cfg: func() Config { c := s3(); c.Redis = RedisConfig{Addrs: []string{"r:6379"}, DB: -1}; return c },
			want: "redis-db: must not be negative, got -1"},
		{name: "redis db on a cluster", cfg: func() Config { c := s3(); c.Redis = RedisConfig{Addrs: []string{"a:1", "b:1"}, DB: 2}; return c },
			want: "redis-db: a Redis cluster (several redis-addr) has only db 0, got 2"},
		{name: "redis password without redis", cfg: func() Config { c := s3(); c.Redis.Password = "pw"; return c },
			want: "redis-password-file: only applies with redis-addr"},
		{name: "redis password twice", cfg: func() Config {
			c := s3()
			c.Redis = RedisConfig{Addrs: []string{"r:6379"}, Password: "pw", PasswordFile: keyFile}
			return c
		}, want: "redis-password-file: set together with REGISTRY_KIT_REDIS_PASSWORD; give only one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := tt.cfg().Validate(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() error (-want +got):\n%s", diff)
			}
			if strings.Contains(got, "do-not-print-me") || strings.Contains(got, "AKEXAMPLE") {
				t.Error("a validation error contains an S3 key")
			}
		})
	}
}

func TestRedactedObjectStorage(t *testing.T) {
	c := DefaultConfig()
	c.S3.AccessKey, c.S3.SecretKey, c.Redis.Password = "ak-value", "sk-value", "redis-pw"
	r := c.Redacted()
	if diff := cmp.Diff([]string{redacted, redacted, redacted}, []string{r.S3.AccessKey, r.S3.SecretKey, r.Redis.Password}); diff != "" {
		t.Error(diff)
	}
	if c.S3.SecretKey != "sk-value" {
		t.Error("Redacted changed the receiver")
	}
}

func TestS3Params(t *testing.T) {
	c := DefaultConfig()
	c.Storage, c.S3.Endpoint, c.S3.Secure, c.S3.Bucket, c.S3.RootDirectory = StorageS3, "minio:9000", false, "b", "/r"
	c.S3.AccessKey, c.S3.SecretKey = "ak", "sk"
	p, err := c.s3Params()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"region": "us-east-1", "bucket": "b", "forcepathstyle": false, "secure": false,
		"skipverify": false, "v4auth": true, "regionendpoint": "http://minio:9000", "rootdirectory": "/r",
		"accesskey": "ak", "secretkey": "sk"}
	if diff := cmp.Diff(want, map[string]any(p)); diff != "" {
		t.Errorf("s3 parameters (-want +got):\n%s", diff)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestReadinessNamesUnreachableDependencies: an s3 server whose object storage and Redis are down starts (so
// its logs and /healthz work) but is not ready, and says which dependency fails; the blob fast path is off.
func TestReadinessNamesUnreachableDependencies(t *testing.T) {
	tests := []struct {
		name      string
		redis     bool
		wantReady string
		wantLog   string
	}{
		{name: "object storage down", wantReady: "not ready: object storage: ",
			wantLog: "object storage without redis-addr"},
		{name: "redis down too", redis: true, wantReady: "not ready: object storage: ",
			wantLog: "could not check the redis maxmemory-policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.NoAuth = true
			cfg.Storage, cfg.HTTPSecret = StorageS3, "shared"
			cfg.S3.Endpoint, cfg.S3.Secure, cfg.S3.Bucket, cfg.S3.ForcePathStyle = "http://"+closedAddr(t), false, "registry", true
			cfg.S3.AccessKey, cfg.S3.SecretKey = "ak", "sk"
			if tt.redis {
				cfg.Redis.Addrs = []string{closedAddr(t)}
			}
			ts := startServer(t, cfg)
			client := &http.Client{Timeout: 20 * time.Second}
			probe := func(base string) (int, string) {
				resp, err := client.Get(base + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			// Unauthenticated: only that it is not ready, nothing about the endpoint, the bucket or the error.
			if code, body := probe(ts.url); code != http.StatusServiceUnavailable || body != "not ready\n" {
				t.Errorf("GET /readyz = %d %q, want 503 %q", code, body, "not ready\n")
			}
			code, body := probe("http://" + ts.MetricsAddr().String())
			if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, tt.wantReady) ||
				!strings.Contains(body, cfg.S3.Endpoint[len("http://"):]) {
				t.Errorf("GET /readyz on the metrics address = %d %q, want 503 starting %q and naming the endpoint", code, body, tt.wantReady)
			}
			if !strings.Contains(ts.logs.String(), `msg="not ready" err="object storage: `) {
				t.Errorf("the log does not say why the server is not ready:\n%s", ts.logs.String())
			}
			if code, _ := get(t, ts.url+"/healthz"); code != http.StatusOK {
				t.Errorf("GET /healthz = %d, want 200", code)
			}
			if !strings.Contains(ts.logs.String(), tt.wantLog) {
				t.Errorf("logs do not contain %q:\n%s", tt.wantLog, ts.logs.String())
			}
		})
	}
}
