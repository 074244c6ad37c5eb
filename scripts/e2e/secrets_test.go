//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// Known secrets the CLI surface is run with. None may appear in any output except where the test says so.
const (
	secretUserPass  = "Kn0wn-user-Passw0rd-7f3a"
	secretWrongPass = "Wr0ng-Passw0rd-for-9c1e"
	secretHTTP      = "Kn0wn-http-Secret-4b8d"
	secretPullPass  = "Kn0wn-pull-Passw0rd-2e6c"
	secretRedisPass = "Kn0wn-redis-Passw0rd-5a1d"
)

// secretForms are the spellings a leaked secret would take: itself, base64 of it, base64 of user:secret (an auth
// field or a Basic Authorization header).
func secretForms(user, secret string) []string {
	return []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + secret)), base64.RawStdEncoding.EncodeToString([]byte(user + ":" + secret))}
}

// assertNoSecret fails, without printing the secret, when text contains one of its forms.
func assertNoSecret(t *testing.T, where, text string, forms ...string) {
	t.Helper()
	for i, f := range forms {
		if strings.Contains(text, f) {
			t.Errorf("%s contains a secret (form %d of %d)", where, i+1, len(forms))
		}
	}
}

type cliRun struct {
	stdout, stderr string
	exit           int
}

// runCLI runs the binary with stdin and extra environment, bounded to a minute.
func runCLI(t *testing.T, stdin string, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("running registry-kit %s: %v", args[0], err)
	}
	return r
}

// TestSecretsStaySecret runs the CLI surface with known passwords and checks that none of them shows in stdout,
// stderr, server logs (at debug level, which logs every request) or metrics. The exceptions are where the user asked
// for a credential: the credential-provider's answer to the kubelet (the protocol carries the password), and
// pull-secret -o yaml, whose .dockerconfigjson data is the credential, base64-encoded as Secret data always is.
func TestSecretsStaySecret(t *testing.T) {
	dir := t.TempDir()
	htp := filepath.Join(dir, "htpasswd")
	all := append(append(secretForms("alice", secretUserPass), secretForms("alice", secretWrongPass)...), secretForms("ci", secretPullPass)...)
	all = append(all, secretHTTP, base64.StdEncoding.EncodeToString([]byte(secretHTTP)))
	all = append(all, secretForms("default", secretRedisPass)...)

	t.Run("htpasswd", func(t *testing.T) {
		for _, c := range []struct {
			name, stdin string
			args        []string
			wantExit    int
		}{
			{"add", secretUserPass + "\n", []string{"htpasswd", "add", "--file", htp, "--user", "alice", "--password-stdin", "--cost", "4"}, 0},
			{"verify right", secretUserPass + "\n", []string{"htpasswd", "verify", "--file", htp, "--user", "alice", "--password-stdin"}, 0},
			{"verify wrong", secretWrongPass + "\n", []string{"htpasswd", "verify", "--file", htp, "--user", "alice", "--password-stdin"}, 1},
			{"verify unknown user", secretWrongPass + "\n", []string{"htpasswd", "verify", "--file", htp, "--user", "mallory", "--password-stdin"}, 1},
			{"add second", secretWrongPass + "\n", []string{"htpasswd", "add", "--file", htp, "--user", "bob", "--password-stdin", "--cost", "4"}, 0},
			{"list", "", []string{"htpasswd", "list", "--file", htp}, 0},
			{"delete", "", []string{"htpasswd", "delete", "--file", htp, "--user", "bob"}, 0},
			{"too long password", strings.Repeat("x", 80) + secretUserPass + "\n", []string{"htpasswd", "add", "--file", htp, "--user", "carol", "--password-stdin"}, 1},
		} {
			r := runCLI(t, c.stdin, nil, c.args...)
			if r.exit != c.wantExit {
				t.Errorf("%s: exit %d, want %d; stderr: %s", c.name, r.exit, c.wantExit, redact(r.stderr, all...))
			}
			assertNoSecret(t, c.name+" stdout", r.stdout, all...)
			assertNoSecret(t, c.name+" stderr", r.stderr, all...)
		}
	})

	t.Run("generate", func(t *testing.T) {
		r := runCLI(t, secretUserPass+"\n", nil, "generate", "--user", "alice", "--password-stdin", "--bcrypt-cost", "4")
		if r.exit != 0 {
			t.Fatalf("generate: exit %d: %s", r.exit, redact(r.stderr, all...))
		}
		assertNoSecret(t, "generate stdout", r.stdout, secretForms("alice", secretUserPass)...)
		assertNoSecret(t, "generate stderr", r.stderr, all...)
		// With no user, generate makes an admin password and prints it once on stderr, the one place it is shown: never
		// on stdout (the manifests carry only its bcrypt hash), and it is the password that hash verifies.
		r = runCLI(t, "", nil, "generate", "--bcrypt-cost", "4")
		m := regexp.MustCompile(`with password: (\S+)`).FindStringSubmatch(r.stderr)
		if r.exit != 0 || m == nil {
			t.Fatalf("generate with a generated admin: exit %d, no password line on stderr", r.exit)
		}
		generated := m[1]
		if n := strings.Count(r.stderr, generated); n != 1 {
			t.Errorf("the generated password shows %d times on stderr, want once", n)
		}
		assertNoSecret(t, "generate stdout with a generated admin", r.stdout, secretForms("admin", generated)...)
		var htp struct {
			Data map[string][]byte `json:"data"`
		}
		for _, doc := range strings.Split(r.stdout, "\n---\n") {
			if strings.Contains(doc, "name: registry-htpasswd") {
				if err := yaml.Unmarshal([]byte(doc), &htp); err != nil {
					t.Fatalf("reading the htpasswd Secret: %v", err)
				}
			}
		}
		f, err := htpasswd.Parse(bytes.NewReader(htp.Data["htpasswd"]))
		if err != nil || !f.Verify("admin", generated) {
			t.Errorf("the htpasswd Secret does not verify the printed admin password (%v)", err)
		}
		r = runCLI(t, secretUserPass+"\n", nil, "generate", "--user", "alice", "--password-stdin", "--bcrypt-cost", "1")
		if r.exit == 0 {
			t.Errorf("generate with a bad bcrypt cost succeeded")
		}
		assertNoSecret(t, "failing generate stdout+stderr", r.stdout+r.stderr, all...)
	})

	t.Run("pull-secret -o yaml", func(t *testing.T) {
		r := runCLI(t, secretPullPass+"\n", nil, "pull-secret", "create", "regcred", "--server", "127.0.0.1:5000", "--username", "ci", "--password-stdin", "-n", "apps", "-o", "yaml")
		if r.exit != 0 {
			t.Fatalf("pull-secret create -o yaml: exit %d: %s", r.exit, redact(r.stderr, all...))
		}
		assertNoSecret(t, "pull-secret stderr", r.stderr, all...)
		// The plain password never shows; the credential is only inside the .dockerconfigjson data (base64 of a JSON
		// whose auth field is base64(user:password)), so outside that field no form of it may appear.
		assertNoSecret(t, "pull-secret stdout", r.stdout, secretPullPass)
		var s struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
			Type              string            `json:"type"`
			Data              map[string][]byte `json:"data"`
			StringData        map[string]string `json:"stringData"`
		}
		if err := yaml.UnmarshalStrict([]byte(r.stdout), &s); err != nil {
			t.Fatalf("pull-secret -o yaml printed no Secret: %v", err)
		}
		payload := s.Data[".dockerconfigjson"]
		if !bytes.Contains(payload, []byte(base64.StdEncoding.EncodeToString([]byte("ci:"+secretPullPass)))) {
			t.Errorf("the .dockerconfigjson data has no auth field for ci (type %q, stringData keys %d)", s.Type, len(s.StringData))
		}
		delete(s.Data, ".dockerconfigjson")
		rest, _ := yaml.Marshal(s)
		assertNoSecret(t, "pull-secret output outside .dockerconfigjson", string(rest), secretForms("ci", secretPullPass)...)
	})

	t.Run("credential-provider", func(t *testing.T) {
		creds := fmt.Sprintf(`{"auths":{"127.0.0.1:5000":{"username":"ci","password":%q}}}`, secretPullPass)
		env := []string{"REGISTRY_KIT_CREDENTIALS=" + creds}
		req := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"127.0.0.1:5000/app:v1"}`
		r := runCLI(t, req, env, "credential-provider")
		if r.exit != 0 || !strings.Contains(r.stdout, secretPullPass) {
			t.Errorf("credential-provider: exit %d, the response carries the password: %v", r.exit, strings.Contains(r.stdout, secretPullPass))
		}
		assertNoSecret(t, "credential-provider stderr", r.stderr, all...)
		for _, bad := range []string{`{"apiVersion":"v0","kind":"CredentialProviderRequest","image":"x"}`, `not json`,
			`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"BAD//ref"}`} {
			r := runCLI(t, bad, env, "credential-provider")
			if r.exit == 0 {
				t.Errorf("credential-provider accepted a bad request")
			}
			assertNoSecret(t, "credential-provider error output", r.stdout+r.stderr, all...)
		}
		r = runCLI(t, req, []string{"REGISTRY_KIT_CREDENTIALS=" + strings.Replace(creds, `"username"`, `"auth":"!!`+secretPullPass+`","username"`, 1)}, "credential-provider")
		if r.exit == 0 {
			t.Errorf("credential-provider accepted credentials with a broken auth field")
		}
		assertNoSecret(t, "credential-provider output for broken credentials", r.stdout+r.stderr, all...)
	})

	t.Run("serve print-config", func(t *testing.T) {
		cfg := filepath.Join(dir, "serve.yaml")
		if err := os.WriteFile(cfg, []byte("http-secret: "+secretHTTP+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			env  []string
			args []string
		}{
			{"from env", []string{"REGISTRY_KIT_HTTP_SECRET=" + secretHTTP}, []string{"serve", "--data-dir", dir, "--print-config"}},
			{"from file", nil, []string{"serve", "--data-dir", dir, "--config", cfg, "--print-config"}},
			{"invalid config", []string{"REGISTRY_KIT_HTTP_SECRET=" + secretHTTP}, []string{"serve", "--data-dir", dir, "--config", cfg, "--log-level", "loud"}},
		} {
			r := runCLI(t, "", c.env, c.args...)
			assertNoSecret(t, "print-config "+c.name, r.stdout+r.stderr, all...)
			if c.name != "invalid config" && (r.exit != 0 || !strings.Contains(r.stdout, "REDACTED")) {
				t.Errorf("print-config %s: exit %d, shows REDACTED: %v", c.name, r.exit, strings.Contains(r.stdout, "REDACTED"))
			}
		}
	})

	// A Redis password inside --redis-addr (a redis:// URL, or PASSWORD@HOST:PORT) is refused, pointing at the password
	// file, by serve and by generate, and shown by no output, print-config included, from a flag, the environment
	// or the config file.
	t.Run("redis-addr with a password", func(t *testing.T) {
		for _, addr := range []string{"redis://:" + secretRedisPass + "@127.0.0.1:6379", secretRedisPass + "@127.0.0.1:6379",
			"redis://default:" + secretRedisPass + "@127.0.0.1:6379/0"} {
			cfg := filepath.Join(dir, "redis.yaml")
			if err := os.WriteFile(cfg, []byte("redis-addr: ["+strconv.Quote(addr)+"]\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"REGISTRY_KIT_HTTP_SECRET=" + secretHTTP}
			serve := []string{"serve", "--data-dir", dir, "--metrics-addr", "", "--log-level", "debug"}
			for _, c := range []struct {
				name      string
				env, args []string
				wantExit  int
			}{
				{"serve flag", env, append(append([]string{}, serve...), "--redis-addr", addr), 1},
				{"serve env", append(env, "REGISTRY_KIT_REDIS_ADDR="+addr), serve, 1},
				{"serve config file", env, append(append([]string{}, serve...), "--config", cfg), 1},
				{"serve --check-config", env, append(append([]string{}, serve...), "--redis-addr", addr, "--check-config"), 1},
				{"serve --print-config", env, append(append([]string{}, serve...), "--redis-addr", addr, "--print-config"), 0},
				{"print-config from env", append(env, "REGISTRY_KIT_REDIS_ADDR="+addr), append(append([]string{}, serve...), "--print-config"), 0},
				{"generate", nil, []string{"generate", "--storage", "s3", "--s3-bucket", "registry", "--redis-addr", addr}, 1},
			} {
				r := runCLI(t, "", c.env, c.args...)
				assertNoSecret(t, c.name+" output", r.stdout+r.stderr, all...)
				if r.exit != c.wantExit {
					t.Errorf("%s: exit %d, want %d: %s", c.name, r.exit, c.wantExit, redact(r.stderr, all...))
				}
				if c.wantExit == 0 && !strings.Contains(r.stdout, "REDACTED@127.0.0.1:6379") {
					t.Errorf("%s does not show the address redacted:\n%s", c.name, redact(r.stdout, all...))
				}
				if c.wantExit != 0 && !strings.Contains(r.stderr, "redis-password-file") {
					t.Errorf("%s: the refusal does not point at the password file: %s", c.name, redact(r.stderr, all...))
				}
			}
		}
	})

	t.Run("serve", func(t *testing.T) {
		srv := startServe(t, "--log-level", "debug", "--log-format", "json")
		if srv.Password == "" {
			t.Fatal("serve with zero config created no admin user")
		}
		forms := append(append([]string{}, all...), secretForms(srv.User, srv.Password)...)
		forms = append(forms, secretForms(srv.User, secretWrongPass)...)
		repo := srv.Addr + "/secrets/app:v1"
		ref, err := name.ParseReference(repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		wrong := remote.WithAuth(&authn.Basic{Username: srv.User, Password: secretWrongPass})
		if err := remote.Write(ref, img, wrong); err == nil {
			t.Errorf("push with a wrong password succeeded")
		}
		if _, err := remote.Head(ref, remote.WithAuth(&authn.Basic{Username: "nobody", Password: secretWrongPass})); err == nil {
			t.Errorf("HEAD as an unknown user succeeded")
		}
		right := remote.WithAuth(&authn.Basic{Username: srv.User, Password: srv.Password})
		if err := remote.Write(ref, img, right); err != nil {
			t.Fatalf("push with the right password: %v", redact(err.Error(), forms...))
		}
		if _, err := remote.Image(ref, right); err != nil {
			t.Fatalf("pull: %v", err)
		}
		resp, err := http.Get("http://" + srv.MetricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("reading metrics: %v", err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), "registry_") {
			t.Errorf("metrics have no registry_ series")
		}
		assertNoSecret(t, "metrics", string(metrics), forms...)
		srv.Stop()
		out := srv.Output()
		if !strings.Contains(out, "admin-password") || !strings.Contains(out, `"msg"`) {
			t.Errorf("serve output lacks the password-file notice or debug request logs")
		}
		assertNoSecret(t, "serve output (debug logs)", out, forms...)
	})

	t.Run("doctor with wrong credentials", func(t *testing.T) {
		srv := startServe(t)
		cs := kubeClient(t)
		ns := newNamespace(t)
		image := pushTestApp(t, srv.Addr, srv.User, srv.Password, "secrets/doctor")
		createSecret(t, cs, ns, dockerConfigJSONSecret("wrong", srv.Addr, srv.User, secretWrongPass))
		doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"wrong"}})
		forms := append(append([]string{}, all...), secretForms(srv.User, srv.Password)...)
		forms = append(forms, secretForms(srv.User, secretWrongPass)...)
		for _, format := range []string{"text", "json"} {
			kc := clusterEnv(t).get(t, "KUBECONFIG")
			r := runCLI(t, "", nil, "doctor", "--kubeconfig", kc, "-n", ns, "-o", format, "web")
			if r.exit == 0 {
				t.Errorf("doctor -o %s found no problem with a wrong password", format)
			}
			if !strings.Contains(r.stdout, "credentials") {
				t.Errorf("doctor -o %s does not report the credentials check:\n%s", format, redact(r.stdout, forms...))
			}
			assertNoSecret(t, "doctor -o "+format+" output", r.stdout+r.stderr, forms...)
		}
		assertNoSecret(t, "serve output during doctor", srv.Output(), forms...)
	})
}
