package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestGenerateObjectStorage: --storage s3 gives replicas without a claim, credentials only in Secrets read
// through env, and server flags that `serve` itself accepts.
func TestGenerateObjectStorage(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "ak")
	sk := filepath.Join(dir, "sk")
	os.WriteFile(ak, []byte("generate-access-key\n"), 0o600)
	os.WriteFile(sk, []byte("generate-secret-key\n"), 0o600)
	out, _, err := runGenerate(t, "", "--storage", "s3", "--replicas", "3", "--s3-endpoint", "http://minio.storage.svc:9000",
		"--s3-secure=false", "--s3-force-path-style", "--s3-bucket", "registry", "--s3-access-key-file", ak,
		"--s3-secret-key-file", sk, "--with-redis", "--redis-image", "127.0.0.1:5000/redis:7")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStream(t, out)
	want := []string{"Namespace", "Secret", "Secret", "Secret", "Secret", "Secret", "Service", "Service", "Deployment", "Deployment",
		"PodDisruptionBudget"}
	if diff := cmp.Diff(want, kinds(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	var dep *appsv1.Deployment
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Secret:
			if v.Name == "registry-s3" && (string(v.Data["access-key"]) != "generate-access-key" || string(v.Data["secret-key"]) != "generate-secret-key") {
				t.Error("Secret registry-s3 does not hold the key files' contents (without their newline)")
			}
		case *appsv1.Deployment:
			if v.Name == "registry" {
				dep = v
			}
		}
	}
	if dep == nil {
		t.Fatal("no registry Deployment")
	}
	if *dep.Spec.Replicas != 3 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %d, strategy %+v; want 3 and a RollingUpdate with maxUnavailable 0", *dep.Spec.Replicas, dep.Spec.Strategy)
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	if strings.Contains(strings.Join(args, " "), "generate-") {
		t.Fatal("a credential is in the container args")
	}
	// The contract with serve: every generated flag exists and parses.
	t.Setenv("REGISTRY_KIT_HTTP_SECRET", "x")
	m := printedConfig(t, append(args[1:], "--data-dir", dir)...)
	got := map[string]any{"storage": m["storage"], "s3-bucket": m["s3-bucket"], "s3-secure": m["s3-secure"], "redis-addr": m["redis-addr"]}
	wantCfg := map[string]any{"storage": "s3", "s3-bucket": "registry", "s3-secure": false, "redis-addr": []any{"registry-redis:6379"}}
	if diff := cmp.Diff(wantCfg, got); diff != "" {
		t.Errorf("serve's view of the generated flags (-want +got):\n%s", diff)
	}
	// And they pass serve's own validation, with the files the pod mounts in place (TestGenerateServeContract
	// covers the settings one by one).
	t.Setenv("REGISTRY_KIT_HTTP_SECRET", "") // the pod has the file instead
	htp := filepath.Join(dir, "htpasswd")
	os.WriteFile(htp, []byte("admin:$2y$05$0Re7pRlT9DHRUDkV7Xl5eOdDoHuD6YvJOCFeNv8cTeBDuuq2Tk9uS\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "http-secret"), []byte("shared\n"), 0o600)
	if _, _, err := runServe(t, append(args[1:], "--data-dir", filepath.Join(dir, "data"), "--htpasswd", htp,
		"--http-secret-file", filepath.Join(dir, "http-secret"), "--check-config")...); err != nil {
		t.Errorf("serve --check-config refuses the generated flags: %v", err)
	}
}

func TestGenerateObjectStorageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "bucket required", args: []string{"--storage", "s3"}, want: "--s3-bucket: required with storage s3"},
		{name: "access mode", args: []string{"--storage", "s3", "--s3-bucket", "images", "--access-mode", "ReadWriteMany"},
			want: "--access-mode: only applies with --storage filesystem"},
		{name: "storage size", args: []string{"--storage", "s3", "--s3-bucket", "images", "--storage-size", "1Gi"},
			want: "--storage-size: only applies with --storage filesystem"},
		{name: "s3 flags on filesystem", args: []string{"--s3-bucket", "images"}, want: "--s3-*: only apply with --storage s3"},
		{name: "rwo replicas", args: []string{"--replicas", "2"},
			want: "--replicas 2: a ReadWriteOnce volume attaches to one node, so only one registry pod can use it; " +
				"use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage"},
		{name: "redis image without redis", args: []string{"--storage", "s3", "--s3-bucket", "images", "--redis-image", "r:1"},
			want: "--redis-image: only applies with --with-redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runGenerate(t, "", tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %s", err, tt.want)
			}
		})
	}
}
