package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestServeObjectStorageConfig: S3 and Redis keys come from flags, the environment (including the AWS SDK's names)
// and the config file; print-config shows every key and redacts the credentials.
func TestServeObjectStorageConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "aws-access-key-value")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-key-value")
	t.Setenv("REGISTRY_KIT_REDIS_PASSWORD", "redis-password-value")
	t.Setenv("REGISTRY_KIT_HTTP_SECRET", "shared-http-secret-value")
	t.Setenv("REGISTRY_KIT_REDIS_ADDR", "10.0.0.1:6379,10.0.0.2:6379")
	cfgFile := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgFile, []byte("s3-bucket: from-file\ns3-region: eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runServe(t, "--data-dir", dir, "--config", cfgFile, "--storage", "s3", "--s3-endpoint", "http://127.0.0.1:9000",
		"--s3-secure=false", "--s3-force-path-style", "--s3-root-directory", "/registry", "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"aws-access-key-value", "aws-secret-key-value", "redis-password-value", "shared-http-secret-value"} {
		if strings.Contains(out, secret) {
			t.Fatal("print-config shows a credential")
		}
	}
	m := printedConfig(t, "--data-dir", dir, "--config", cfgFile, "--storage", "s3", "--s3-endpoint", "http://127.0.0.1:9000",
		"--s3-secure=false", "--s3-force-path-style", "--s3-root-directory", "/registry")
	got := map[string]any{}
	for _, k := range []string{"storage", "s3-endpoint", "s3-region", "s3-bucket", "s3-root-directory", "s3-force-path-style",
		"s3-secure", "s3-skip-verify", "s3-access-key", "s3-secret-key", "blob-redirect", "redis-addr", "redis-db", "redis-password"} {
		got[k] = m[k]
	}
	want := map[string]any{
		"storage": "s3", "s3-endpoint": "http://127.0.0.1:9000", "s3-region": "eu-west-1", "s3-bucket": "from-file",
		"s3-root-directory": "/registry", "s3-force-path-style": true, "s3-secure": false, "s3-skip-verify": false,
		"s3-access-key": "REDACTED", "s3-secret-key": "REDACTED", "blob-redirect": false,
		"redis-addr": []any{"10.0.0.1:6379", "10.0.0.2:6379"}, "redis-db": float64(0), "redis-password": "REDACTED",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("print-config (-want +got):\n%s", diff)
	}
}

func TestServeObjectStorageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "s3 without shared secret", args: []string{"--storage", "s3", "--s3-bucket", "images"},
			want: "invalid configuration:\nhttp-secret-file: required with storage s3: every replica on the bucket must share it, " +
				`or uploads fail ("blob upload invalid: invalid secret", "blob upload unknown" in older registries) when a PATCH ` +
				`lands on another replica (give http-secret-file or REGISTRY_KIT_HTTP_SECRET)`},
		{name: "redis db not a number", env: map[string]string{"REGISTRY_KIT_REDIS_DB": "one"},
			want: "invalid configuration:\nredis-db: \"one\" is not a whole number"},
		{name: "unknown storage", args: []string{"--storage", "nfs"},
			want: "invalid configuration:\nstorage: unknown storage \"nfs\" (want filesystem or s3)"},
		{name: "secret key only", env: map[string]string{"REGISTRY_KIT_S3_SECRET_KEY": "only-secret", "REGISTRY_KIT_HTTP_SECRET": "x"},
			args: []string{"--storage", "s3", "--s3-bucket", "images"},
			want: "invalid configuration:\ns3-access-key: missing: s3-secret-key is set (give REGISTRY_KIT_S3_ACCESS_KEY or s3-access-key-file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, _, err := runServe(t, append([]string{"--data-dir", dir, "--metrics-addr", "", "--no-auth"}, tt.args...)...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeHasNoCredentialFlags: credentials never come from flags, which show in ps.
func TestServeHasNoCredentialFlags(t *testing.T) {
	cmd := newServeCommand(IOStreams{})
	for _, name := range []string{"s3-access-key", "s3-secret-key", "redis-password", "http-secret"} {
		if cmd.Flags().Lookup(name) != nil {
			t.Errorf("serve has a --%s flag", name)
		}
	}
}

// TestServeRedisAddrCredentials: a password inside --redis-addr (a redis:// URL or PASSWORD@HOST:PORT) is refused
// with a message pointing at the password file, and neither the refusal nor --print-config repeats it.
func TestServeRedisAddrCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"redis://:addr-pw-value@127.0.0.1:6379", "addr-pw-value@127.0.0.1:6379", "redis://default:addr-pw-value@redis:6379/0"} {
		t.Run(addr, func(t *testing.T) {
			out, errOut, err := runServe(t, "--data-dir", dir, "--no-auth", "--metrics-addr", "", "--redis-addr", addr, "--print-config")
			if err != nil {
				t.Fatalf("print-config: %v", err)
			}
			if strings.Contains(out+errOut, "addr-pw-value") {
				t.Error("print-config shows the password inside redis-addr")
			}
			if !strings.Contains(out, "REDACTED@") {
				t.Errorf("print-config does not show the address was redacted:\n%s", out)
			}
			_, errOut, err = runServe(t, "--data-dir", dir, "--no-auth", "--metrics-addr", "", "--redis-addr", addr)
			want := "invalid configuration:\nredis-addr: must be HOST:PORT without credentials: give the Redis password in " +
				"redis-password-file or REGISTRY_KIT_REDIS_PASSWORD (generate/deploy: --redis-password-file)"
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(got+errOut, "addr-pw-value") {
				t.Error("serve repeats the password inside redis-addr")
			}
		})
	}
}
