package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestGenerateServeContract: for the object-storage and Redis settings, generate (and so deploy, which validates the
// same Options) accepts exactly what serve accepts, and the arguments of every Deployment it generates pass serve's
// real validation (--check-config, the one serve runs before starting), with the files the pod mounts in place.
// A setting only one side refused would be a pod that crash-loops.
func TestGenerateServeContract(t *testing.T) {
	dir := t.TempDir()
	htpasswdFile := filepath.Join(dir, "htpasswd")
	secretFile := filepath.Join(dir, "http-secret")
	for path, content := range map[string]string{
		htpasswdFile: "admin:$2y$05$0Re7pRlT9DHRUDkV7Xl5eOdDoHuD6YvJOCFeNv8cTeBDuuq2Tk9uS\n",
		secretFile:   "shared-secret\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	minio := []string{"--s3-endpoint", "http://minio.storage:9000", "--s3-secure=false", "--s3-force-path-style"}
	tests := []struct {
		name  string
		flags []string // flags both commands take
		// inCluster adds --with-redis to generate; serve gets the address generate writes for it.
		inCluster bool
		wantOK    bool
		wantKey   string // the key both refusals name
	}{
		{name: "minio", flags: append([]string{"--s3-bucket", "registry"}, minio...), wantOK: true},
		{name: "aws", flags: []string{"--s3-bucket", "registry", "--s3-region", "eu-west-1"}, wantOK: true},
		{name: "endpoint without scheme", flags: []string{"--s3-bucket", "registry", "--s3-endpoint", "minio.storage:9000"}, wantOK: true},
		{name: "root directory", flags: append([]string{"--s3-bucket", "registry", "--s3-root-directory", "/team/registry"}, minio...), wantOK: true},
		{name: "skip verify with tls", flags: []string{"--s3-bucket", "registry", "--s3-endpoint", "https://minio:9000", "--s3-skip-verify"}, wantOK: true},
		{name: "redis with a db", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "redis:6379", "--redis-db", "3"}, minio...), wantOK: true},
		{name: "in-cluster redis with a db", flags: append([]string{"--s3-bucket", "registry", "--redis-db", "2"}, minio...), inCluster: true, wantOK: true},
		{name: "one-letter bucket", flags: append([]string{"--s3-bucket", "b"}, minio...), wantKey: "s3-bucket"},
		{name: "upper-case bucket", flags: append([]string{"--s3-bucket", "My_Bucket"}, minio...), wantKey: "s3-bucket"},
		{name: "bucket with two periods", flags: append([]string{"--s3-bucket", "a..b"}, minio...), wantKey: "s3-bucket"},
		{name: "root with //", flags: append([]string{"--s3-bucket", "registry", "--s3-root-directory", "/a//b"}, minio...), wantKey: "s3-root-directory"},
		{name: "root with ..", flags: append([]string{"--s3-bucket", "registry", "--s3-root-directory", "/a/../b"}, minio...), wantKey: "s3-root-directory"},
		{name: "root with a space", flags: append([]string{"--s3-bucket", "registry", "--s3-root-directory", "/a b"}, minio...), wantKey: "s3-root-directory"},
		{name: "skip verify without tls", flags: append([]string{"--s3-bucket", "registry", "--s3-skip-verify"}, minio...), wantKey: "s3-skip-verify"},
		{name: "redis db on a cluster", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "a:6379,b:6379", "--redis-db", "2"}, minio...), wantKey: "redis-db"},
		{name: "negative redis db", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "redis:6379", "--redis-db", "-1"}, minio...), wantKey: "redis-db"},
		{name: "redis url with password", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "redis://:contract-pw@redis:6379"}, minio...), wantKey: "redis-addr"},
		{name: "redis password before host", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "contract-pw@redis:6379"}, minio...), wantKey: "redis-addr"},
		{name: "redis port zero", flags: append([]string{"--s3-bucket", "registry", "--redis-addr", "redis:0"}, minio...), wantKey: "redis-addr"},
	}
	// The files the pod mounts, at temporary paths; these flags come last, so they win over the generated ones.
	mounted := []string{"--data-dir", filepath.Join(dir, "data"), "--htpasswd", htpasswdFile, "--http-secret-file", secretFile, "--check-config"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			genFlags := append([]string{"--storage", "s3"}, tt.flags...)
			if tt.inCluster {
				genFlags = append(genFlags, "--with-redis")
			}
			out, _, genErr := runGenerate(t, "", genFlags...)
			var serveArgs []string
			if genErr == nil {
				serveArgs = deploymentArgs(t, out)
			} else {
				serveArgs = append([]string{"--storage", "s3"}, tt.flags...)
				if tt.inCluster {
					serveArgs = append(serveArgs, "--redis-addr", "registry-redis:6379")
				}
			}
			_, _, serveErr := runServe(t, append(serveArgs, mounted...)...)
			if (genErr == nil) != tt.wantOK || (serveErr == nil) != tt.wantOK {
				t.Fatalf("generate: %v\nserve --check-config %q: %v\nwant both to accept: %v", genErr, serveArgs, serveErr, tt.wantOK)
			}
			if tt.wantOK {
				return
			}
			if !strings.Contains(genErr.Error(), "--"+tt.wantKey+":") || !strings.Contains(serveErr.Error(), "\n"+tt.wantKey+":") {
				t.Errorf("both refusals should name %s:\ngenerate: %v\nserve: %v", tt.wantKey, genErr, serveErr)
			}
			if strings.Contains(genErr.Error()+serveErr.Error(), "contract-pw") {
				t.Error("a refusal repeats the Redis password")
			}
		})
	}
}

// deploymentArgs are the serve arguments of the registry Deployment in a generated stream, without "serve".
func deploymentArgs(t *testing.T, stream string) []string {
	t.Helper()
	for _, o := range decodeStream(t, stream) {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == "registry" {
			args := d.Spec.Template.Spec.Containers[0].Args
			if len(args) == 0 || args[0] != "serve" {
				t.Fatalf("registry container args %q do not start with serve", args)
			}
			return args[1:]
		}
	}
	t.Fatal("no registry Deployment in the generated objects")
	return nil
}
