package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/manifests"
)

// parseDeploy runs deploy's flag parsing and validation only (no cluster).
func parseDeploy(t *testing.T, args ...string) (*deployOptions, *manifests.Options, error) {
	t.Helper()
	o := &deployOptions{kube: newKubeFlags()}
	streams := IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	cmd := deployCommand(streams, o)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	dopts, err := o.toOptions(cmd, streams)
	return o, dopts.Source.Generate, err
}

// TestDeployObjectStorageFlags: deploy maps the S3 and Redis flags into manifests.Options as generate does; the
// key and password files are read (without their newline) and never appear in a diff.
func TestDeployObjectStorageFlags(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"ak": "deploy-access-key\n", "sk": "deploy-secret-key\r\n", "rp": "deploy-redis-password"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--storage", "s3", "--replicas", "2", "--s3-endpoint", "http://10.200.0.1:9000", "--s3-secure=false",
		"--s3-force-path-style", "--s3-bucket", "registry", "--s3-root-directory", "/r", "--s3-region", "eu-1",
		"--s3-access-key-file", filepath.Join(dir, "ak"), "--s3-secret-key-file", filepath.Join(dir, "sk")}
	tests := []struct {
		name      string
		args      []string
		wantS3    manifests.S3
		wantRedis manifests.Redis
		wantPw    string
	}{
		{
			name:      "in-cluster redis",
			args:      append(append([]string{}, common...), "--with-redis", "--redis-image", "localhost:5000/redis:7", "--blob-redirect"),
			wantS3:    manifests.S3{Endpoint: "http://10.200.0.1:9000", Region: "eu-1", Bucket: "registry", RootDirectory: "/r", ForcePathStyle: true, Insecure: true, BlobRedirect: true},
			wantRedis: manifests.Redis{InCluster: true, Image: "localhost:5000/redis:7"},
		},
		{
			name: "external redis",
			args: append(append([]string{}, common...), "--redis-addr", "redis.storage.svc:6379", "--redis-db", "3",
				"--redis-password-file", filepath.Join(dir, "rp")),
			wantS3:    manifests.S3{Endpoint: "http://10.200.0.1:9000", Region: "eu-1", Bucket: "registry", RootDirectory: "/r", ForcePathStyle: true, Insecure: true},
			wantRedis: manifests.Redis{Addrs: []string{"redis.storage.svc:6379"}, DB: 3},
			wantPw:    "deploy-redis-password",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m, err := parseDeploy(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if m.Storage != manifests.StorageS3 || m.Replicas != 2 || !m.StorageSize.IsZero() {
				t.Errorf("storage %q, replicas %d, storage size %s; want s3, 2 and none", m.Storage, m.Replicas, m.StorageSize.String())
			}
			if string(m.S3.AccessKey) != "deploy-access-key" || string(m.S3.SecretKey) != "deploy-secret-key" {
				t.Error("the S3 keys are not the key files' contents without their line ending")
			}
			if string(m.Redis.Password) != tc.wantPw {
				t.Error("the Redis password is not the password file's content")
			}
			s3, redis := m.S3, m.Redis
			s3.AccessKey, s3.SecretKey, redis.Password = nil, nil, nil
			if diff := cmp.Diff(tc.wantS3, s3); diff != "" {
				t.Errorf("S3 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRedis, redis); diff != "" {
				t.Errorf("Redis (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeployObjectStorageErrors: wrong combinations are refused with exactly these errors, before any cluster is
// contacted; with -k every generator flag is refused by name.
func TestDeployObjectStorageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := []string{"--storage", "s3", "--s3-bucket", "images"}
	with := func(extra ...string) []string { return append(append([]string{}, s3...), extra...) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"access mode with s3", with("--access-mode", "ReadWriteMany"), "--access-mode: only applies with --storage filesystem"},
		{"storage size with s3", with("--storage-size", "1Gi"), "--storage-size: only applies with --storage filesystem"},
		{"bucket required", []string{"--storage", "s3"}, "--s3-bucket: required with storage s3"},
		{"s3 flags on filesystem", []string{"--s3-bucket", "images"}, "--s3-*: only apply with --storage s3"},
		{"plain http endpoint", with("--s3-endpoint", "http://minio:9000"), `--s3-endpoint: "http://minio:9000" is plain http but s3-secure is true; set s3-secure to false for an endpoint without TLS`},
		{"one key file", with("--s3-access-key-file", key), "--s3-access-key-file, --s3-secret-key-file: give both or neither"},
		{"missing key file", with("--s3-access-key-file", filepath.Join(dir, "nope"), "--s3-secret-key-file", empty),
			"--s3-access-key-file: reading open " + filepath.Join(dir, "nope") + ": no such file or directory\n" +
				"--s3-secret-key-file " + empty + ": is empty"},
		{"redis both ways", with("--with-redis", "--redis-addr", "r:6379"), "--with-redis: cannot be combined with --redis-addr"},
		{"redis image without --with-redis", with("--redis-image", "x/redis:7"), "--redis-image: only applies with --with-redis"},
		{"redis password without redis", with("--redis-db", "2"), "--redis-db: only applies with redis-addr"},
		{"replicas on a ReadWriteOnce claim", []string{"--replicas", "2"}, ""},
		{"zero replicas", with("--replicas", "0"), "--replicas 0: must be 1 or more"},
		{"generator flags with -k", []string{"-k", dir, "--storage", "s3", "--with-redis", "--s3-bucket", "images", "--http-secret-file", empty},
			"--http-secret-file: cannot be combined with -k (the overlay says what to deploy)\n" +
				"--s3-bucket: cannot be combined with -k (the overlay says what to deploy)\n" +
				"--storage: cannot be combined with -k (the overlay says what to deploy)\n" +
				"--with-redis: cannot be combined with -k (the overlay says what to deploy)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseDeploy(t, tc.args...)
			if err == nil {
				t.Fatalf("deploy %s: no error", strings.Join(tc.args, " "))
			}
			if tc.want == "" { // the generator's own message, checked in manifests
				if !strings.Contains(err.Error(), "--replicas 2") {
					t.Errorf("error %q does not name --replicas 2", err)
				}
				return
			}
			if got := strings.TrimPrefix(err.Error(), "validating options: "); got != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestGenerateAndDeployShareFlags: every generator flag of deploy is also a generate flag, with the same default.
func TestGenerateAndDeployShareFlags(t *testing.T) {
	o := &deployOptions{kube: newKubeFlags()}
	streams := IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	dep := deployCommand(streams, o)
	gen := newGenerateCommand(streams)
	if len(o.names) < 25 {
		t.Fatalf("deploy has only %d generator flags: %v", len(o.names), o.names)
	}
	for _, name := range o.names {
		g := gen.Flags().Lookup(name)
		d := dep.Flags().Lookup(name)
		if g == nil || d == nil {
			t.Errorf("--%s: generate has it %v, deploy has it %v", name, g != nil, d != nil)
			continue
		}
		if g.DefValue != d.DefValue {
			t.Errorf("--%s: default %q in generate, %q in deploy", name, g.DefValue, d.DefValue)
		}
	}
}
