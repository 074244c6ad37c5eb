//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runPullSecretRK runs the registry-kit binary with stdin and extra environment; it returns stdout and fails the test on a
// non-zero exit unless wantFail. Output is printed on failure: the binary never prints a password.
func runPullSecretRK(t *testing.T, stdin string, env []string, wantFail bool, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if wantFail != (err != nil) {
		t.Fatalf("registry-kit %s: err=%v, want failure %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, wantFail, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// stubCredentialHelper installs docker-credential-<name>, a shell script speaking the credential helper protocol
// that knows one server, and returns the PATH entry to use.
func stubCredentialHelper(t *testing.T, name, server, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	creds, _ := json.Marshal(map[string]string{"ServerURL": server, "Username": user, "Secret": pass})
	credFile := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(credFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }
read -r server
if [ "$server" = %q ]; then cat %q; exit 0; fi
echo "credentials not found in native keychain"; exit 1
`, server, credFile)
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPullSecretCreate: a pod in namespace A pulls a private image from registry-kit with a Secret that
// `registry-kit pull-secret create` made from flags, from a docker config with plain auths, from a docker config
// whose credentials live in a credential helper, and through the patched default ServiceAccount with no
// imagePullSecrets in the pod spec. A refused run (a Secret of another type in one target namespace) writes
// nothing anywhere.
func TestPullSecretCreate(t *testing.T) {
	cs := kubeClient(t)
	kubeconfig := clusterEnv(t).get(t, "KUBECONFIG")
	reg := startServe(t)
	if reg.User == "" || reg.Password == "" {
		t.Fatalf("registry-kit serve should create user admin and write %s/admin-password", reg.DataDir)
	}
	trustRegistry(t, reg.Addr)
	ref := pushTestApp(t, reg.Addr, reg.User, reg.Password, "e2e/pull-secret")
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	writeFile := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	paths := []struct {
		name  string
		stdin string
		env   func(t *testing.T) []string
		args  func(t *testing.T) []string
	}{
		{
			name:  "flags",
			stdin: reg.Password + "\n",
			args: func(*testing.T) []string {
				return []string{"--server", reg.Addr, "--username", reg.User, "--password-stdin"}
			},
		},
		{
			name: "docker config with plain auths",
			args: func(t *testing.T) []string {
				// docker login writes the bare host:port; a URL key is normalised to it.
				cfg := writeFile(t, `{"auths":{"http://`+reg.Addr+`/v2/":{"auth":"`+auth+`"}}}`)
				return []string{"--from-docker-config=" + cfg, "--server", reg.Addr}
			},
		},
		{
			name: "docker config via a credential helper",
			env: func(t *testing.T) []string {
				dir := stubCredentialHelper(t, "rke2e", reg.Addr, reg.User, reg.Password)
				return []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
			},
			args: func(t *testing.T) []string {
				cfg := writeFile(t, `{"auths":{"`+reg.Addr+`":{}},"credsStore":"rke2e"}`)
				return []string{"--from-docker-config", cfg, "--server", reg.Addr}
			},
		},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			var env []string
			if p.env != nil {
				env = p.env(t)
			}
			args := append([]string{"pull-secret", "create", "regcred", "--kubeconfig", kubeconfig, "-n", ns, "--service-account", ""}, p.args(t)...)
			stdout, _ := runPullSecretRK(t, p.stdin, env, false, args...)
			if !strings.Contains(stdout, "secret/regcred created in namespace "+ns) || !strings.Contains(stdout, "recreate existing pods") {
				t.Errorf("unexpected output:\n%s", stdout)
			}
			createPod(t, cs, ns, "app", ref, "regcred")
			waitPodPhase(t, cs, ns, "app", corev1.PodRunning)
		})
	}

	t.Run("default service account, no imagePullSecrets in the pod", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		ctx := context.Background()
		sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "kept"}}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second run changes nothing
			stdout, _ := runPullSecretRK(t, reg.Password, nil, false, "pull-secret", "create", "regcred", "--kubeconfig", kubeconfig, "-n", ns,
				"--server", reg.Addr, "--username", reg.User, "--password-stdin")
			t.Log(strings.TrimSpace(stdout))
		}
		sa, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []corev1.LocalObjectReference{{Name: "kept"}, {Name: "regcred"}}
		if !slices.Equal(sa.ImagePullSecrets, want) {
			t.Fatalf("default ServiceAccount imagePullSecrets = %v, want %v", sa.ImagePullSecrets, want)
		}
		createPod(t, cs, ns, "app", ref, "")
		pod := waitPodPhase(t, cs, ns, "app", corev1.PodRunning)
		if !slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "regcred" }) {
			t.Errorf("admission did not copy the ServiceAccount's pull secret into the pod: %v", pod.Spec.ImagePullSecrets)
		}
	})

	t.Run("refusal writes nothing", func(t *testing.T) {
		t.Parallel()
		a, b := newNamespace(t), newNamespace(t)
		ctx := context.Background()
		opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeOpaque, StringData: map[string]string{"k": "v"}}
		if _, err := cs.CoreV1().Secrets(b).Create(ctx, opaque, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, stderr := runPullSecretRK(t, reg.Password, nil, true, "pull-secret", "create", "regcred", "--kubeconfig", kubeconfig, "-n", a+","+b,
			"--server", reg.Addr, "--username", reg.User, "--password-stdin", "--overwrite")
		if !strings.Contains(stderr, `already exists with type "Opaque"`) || !strings.Contains(stderr, "nothing was changed") {
			t.Errorf("stderr does not explain the refusal:\n%s", stderr)
		}
		if _, err := cs.CoreV1().Secrets(a).Get(ctx, "regcred", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("secret was written in %s despite the refusal (err %v)", a, err)
		}
		sa, _ := cs.CoreV1().ServiceAccounts(a).Get(ctx, "default", metav1.GetOptions{})
		if len(sa.ImagePullSecrets) != 0 {
			t.Errorf("service account in %s was patched despite the refusal: %v", a, sa.ImagePullSecrets)
		}
		if s, _ := cs.CoreV1().Secrets(b).Get(ctx, "regcred", metav1.GetOptions{}); s == nil || s.Type != corev1.SecretTypeOpaque {
			t.Errorf("the Opaque secret in %s was changed", b)
		}
	})
}

// TestPullSecretMatchesKubectl compares `pull-secret create -o json` with `kubectl create secret docker-registry
// --dry-run=client -o json` for the same input: same type, and a byte-identical .dockerconfigjson.
func TestPullSecretMatchesKubectl(t *testing.T) {
	kubectl := needTool(t, "kubectl")
	const pass = "kc-compare-P4ss<&>" // fake, with characters JSON escapes
	cases := []struct{ name, server, email string }{
		{"host:port with email", "127.0.0.1:5000", "dev@example.com"},
		{"docker hub default", "https://index.docker.io/v1/", ""},
		{"dns name", "registry.example.com", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kargs := []string{"create", "secret", "docker-registry", "regcred", "--docker-server=" + c.server,
				"--docker-username=alice", "--docker-password=" + pass, "--dry-run=client", "-o", "json", "--namespace", "apps"}
			if c.email != "" {
				kargs = append(kargs, "--docker-email="+c.email)
			}
			kcmd := exec.Command(kubectl, kargs...)
			kcmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
			kout, err := kcmd.Output()
			if err != nil {
				t.Fatalf("kubectl: %v", err)
			}
			args := []string{"pull-secret", "create", "regcred", "--server", c.server, "--username", "alice", "--password-stdin", "-n", "apps", "-o", "json"}
			if c.email != "" {
				args = append(args, "--email", c.email)
			}
			ours, _ := runPullSecretRK(t, pass, nil, false, args...)
			var k, o corev1.Secret
			if err := json.Unmarshal(kout, &k); err != nil {
				t.Fatalf("decoding kubectl output: %v", err)
			}
			if err := json.Unmarshal([]byte(ours), &o); err != nil {
				t.Fatalf("decoding registry-kit output: %v", err)
			}
			if k.Type != o.Type || k.Name != o.Name || k.Namespace != o.Namespace {
				t.Errorf("kubectl %s %s/%s, registry-kit %s %s/%s", k.Type, k.Namespace, k.Name, o.Type, o.Namespace, o.Name)
			}
			// Compare without printing: the payload holds the (fake) password.
			if !bytes.Equal(k.Data[corev1.DockerConfigJsonKey], o.Data[corev1.DockerConfigJsonKey]) {
				t.Errorf(".dockerconfigjson differs from kubectl's (%d vs %d bytes)", len(k.Data[corev1.DockerConfigJsonKey]), len(o.Data[corev1.DockerConfigJsonKey]))
			}
		})
	}
}
