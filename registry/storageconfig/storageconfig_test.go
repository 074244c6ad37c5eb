package storageconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func messages(ps []*Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

func TestS3Validate(t *testing.T) {
	ok := S3{Endpoint: "http://127.0.0.1:9000", Region: DefaultS3Region, Bucket: "registry"}
	tests := []struct {
		name string
		edit func(*S3)
		want []string
	}{
		{name: "minio", edit: func(*S3) {}},
		{name: "aws with tls", edit: func(s *S3) { s.Endpoint, s.Secure, s.SkipVerify = "", true, true }},
		{name: "host port endpoint", edit: func(s *S3) { s.Endpoint = "minio.storage:9000" }},
		{name: "root directory", edit: func(s *S3) { s.RootDirectory = "/registry/v1" }},
		{name: "no bucket", edit: func(s *S3) { s.Bucket = "" }, want: []string{"s3-bucket: required with storage s3"}},
		{name: "short bucket", edit: func(s *S3) { s.Bucket = "b" }, want: []string{`s3-bucket: "b" must be 3 to 63 characters`}},
		{name: "upper-case bucket", edit: func(s *S3) { s.Bucket = "My_Bucket" },
			want: []string{`s3-bucket: "My_Bucket" may hold only lower-case letters, digits, '-' and '.'`}},
		{name: "bucket starting with a dash", edit: func(s *S3) { s.Bucket = "-images" },
			want: []string{`s3-bucket: "-images" must start and end with a letter or digit`}},
		{name: "bucket with two periods", edit: func(s *S3) { s.Bucket = "a..b" },
			want: []string{`s3-bucket: "a..b" must not contain two adjacent periods`}},
		{name: "no region", edit: func(s *S3) { s.Region = "" },
			want: []string{"s3-region: required with storage s3 (any value, such as us-east-1, for S3-compatible servers)"}},
		{name: "double slash root", edit: func(s *S3) { s.RootDirectory = "/a//b" },
			want: []string{`s3-root-directory: "/a//b" must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)`}},
		{name: "dot-dot root", edit: func(s *S3) { s.RootDirectory = "/a/../b" },
			want: []string{`s3-root-directory: "/a/../b" must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)`}},
		{name: "relative root", edit: func(s *S3) { s.RootDirectory = "registry" },
			want: []string{`s3-root-directory: "registry" must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)`}},
		{name: "skip verify without tls", edit: func(s *S3) { s.SkipVerify = true },
			want: []string{"s3-skip-verify: only applies with s3-secure (TLS is off)"}},
		{name: "http endpoint with tls", edit: func(s *S3) { s.Secure = true },
			want: []string{`s3-endpoint: "http://127.0.0.1:9000" is plain http but s3-secure is true; set s3-secure to false for an endpoint without TLS`}},
		{name: "https endpoint without tls", edit: func(s *S3) { s.Endpoint = "https://s3.example.com" },
			want: []string{`s3-endpoint: "https://s3.example.com" is https but s3-secure is false`}},
		{name: "endpoint port out of range", edit: func(s *S3) { s.Endpoint = "http://127.0.0.1:99999" },
			want: []string{`s3-endpoint: "http://127.0.0.1:99999": port must be 1-65535`}},
		{name: "endpoint with credentials", edit: func(s *S3) { s.Endpoint = "http://ak:s3cr3t@127.0.0.1:9000" },
			want: []string{"s3-endpoint: must not hold credentials (give REGISTRY_KIT_S3_ACCESS_KEY/REGISTRY_KIT_S3_SECRET_KEY or the key files)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			if diff := cmp.Diff(tt.want, messages(s.Validate())); diff != "" {
				t.Errorf("Validate() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedisValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Redis
		want []string
	}{
		{name: "none"},
		{name: "one server with a db", r: Redis{Addrs: []string{"redis:6379"}, DB: 3}},
		{name: "cluster", r: Redis{Addrs: []string{"a:6379", "b:6379"}}},
		{name: "db without redis", r: Redis{DB: 1}, want: []string{"redis-db: only applies with redis-addr"}},
		{name: "negative db", r: Redis{Addrs: []string{"r:6379"}, DB: -1}, want: []string{"redis-db: must not be negative, got -1"}},
		{name: "db on a cluster", r: Redis{Addrs: []string{"a:1", "b:1"}, DB: 2},
			want: []string{"redis-db: a Redis cluster (several redis-addr) has only db 0, got 2"}},
		{name: "no port", r: Redis{Addrs: []string{"redis"}}, want: []string{`redis-addr: "redis" is not HOST:PORT`}},
		{name: "port zero", r: Redis{Addrs: []string{"redis:0"}}, want: []string{"redis-addr: port 0 out of range"}},
		{name: "url", r: Redis{Addrs: []string{"redis://redis:6379"}}, want: []string{`redis-addr: "redis://redis:6379" must be HOST:PORT, not a URL`}},
		{name: "url with password", r: Redis{Addrs: []string{"redis://:hunter2@redis:6379"}}, want: []string{"redis-addr: " + ErrRedisCredentials.Error()}},
		{name: "password before host", r: Redis{Addrs: []string{"hunter2@redis:6379"}}, want: []string{"redis-addr: " + ErrRedisCredentials.Error()}},
		{name: "user and password", r: Redis{Addrs: []string{"default:hunter2@redis:6379"}}, want: []string{"redis-addr: " + ErrRedisCredentials.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := tt.r.Validate()
			got := messages(ps)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.Join(got, "\n"), "hunter2") {
				t.Error("a message repeats the password")
			}
			for _, p := range ps {
				if strings.Contains(strings.Join(tt.r.Addrs, ","), "@") && !errors.Is(p, ErrRedisCredentials) {
					t.Errorf("%v does not wrap ErrRedisCredentials", p)
				}
			}
		})
	}
}

func TestRedactAddr(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "redis:6379", want: "redis:6379"},
		{name: "url with password", in: "redis://:hunter2@redis:6379", want: "REDACTED@redis:6379"},
		{name: "password before host", in: "hunter2@redis:6379", want: "REDACTED@redis:6379"},
		{name: "password with @", in: "redis://u:p@ss@redis:6379/0", want: "REDACTED@redis:6379"},
		{name: "s3 endpoint", in: "http://ak:sk@127.0.0.1:9000", want: "REDACTED@127.0.0.1:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, RedactAddr(tt.in)); diff != "" {
				t.Errorf("RedactAddr(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
