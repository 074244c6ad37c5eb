package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"

	"github.com/registry-kit/registry-kit/auth/credprovider"
	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

func TestCredentialProviderCommand(t *testing.T) {
	dir := t.TempDir()
	creds := `{"auths":{"127.0.0.1:5000":{"auth":"` + dockerconfig.EncodeAuth("node", pullSecretTestPassword) + `"}}}`
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.json")
	if err := os.WriteFile(open, []byte(creds), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	req := func(apiVersion, image string) string {
		return `{"kind":"CredentialProviderRequest","apiVersion":"` + apiVersion + `","image":"` + image + `"}`
	}
	const v1 = "credentialprovider.kubelet.k8s.io/v1"
	tests := []struct {
		name, stdin, env string
		args             []string
		wantOut, wantErr string
	}{
		{
			name: "file", stdin: req(v1, "127.0.0.1:5000/app:v1"), args: []string{"--config", good, "--cache-duration", "90s"},
			wantOut: `{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"1m30s","auth":{"127.0.0.1:5000":{"username":"node","password":"` + pullSecretTestPassword + `"}}}` + "\n",
		},
		{
			name: "env", stdin: req(v1, "quay.io/app"), env: creds,
			wantOut: `{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"10m0s"}` + "\n",
		},
		{name: "world-readable file", stdin: req(v1, "x"), args: []string{"--config", open}, wantErr: "has mode 0644"},
		{name: "default file missing", stdin: req(v1, "x"), args: []string{"--config", filepath.Join(dir, "missing.json")}, wantErr: "no such file"},
		{name: "unsupported apiVersion", stdin: req("credentialprovider.kubelet.k8s.io/v1beta1", "x"), args: []string{"--config", good}, wantErr: `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1beta1"`},
		{name: "malformed", stdin: "{", args: []string{"--config", good}, wantErr: "bad credential provider request: not JSON"},
		{name: "negative cache", stdin: req(v1, "x"), args: []string{"--config", good, "--cache-duration", "-1s"}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(credprovider.CredentialsEnv, tt.env)
			}
			stdout, _, err := runCLI(t, tt.stdin, append([]string{"credential-provider"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error()+stdout, pullSecretTestPassword) {
					t.Error("password leaked")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.wantOut)
			}
		})
	}
}

func TestCredentialProviderConfigCommand(t *testing.T) {
	stdout, _, err := runCLI(t, "", "credential-provider", "config", "--match", "127.0.0.1:5000", "--match", "*.corp.example", "--with-ecr", "--with-acr", "--with-gcp", "--cache-duration", "2m")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strictProviderConfig(t, stdout)
	var names []string
	for _, p := range cfg.Providers {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "registry-kit,ecr-credential-provider,acr-credential-provider,auth-provider-gcp" {
		t.Errorf("providers %s", got)
	}
	if p := cfg.Providers[0]; p.DefaultCacheDuration.Duration.String() != "2m0s" || strings.Join(p.MatchImages, ",") != "127.0.0.1:5000,*.corp.example" {
		t.Errorf("registry-kit provider %+v", p)
	}
	if _, _, err := runCLI(t, "", "credential-provider", "config"); err == nil || !strings.Contains(err.Error(), "no registry to match") {
		t.Errorf("no --match: %v", err)
	}
	if _, _, err := runCLI(t, "", "credential-provider", "config", "--match", "http://r:1"); err == nil || !strings.Contains(err.Error(), "must not have a scheme") {
		t.Errorf("scheme: %v", err)
	}
}

// strictProviderConfig decodes the printed config with the kubelet's types, rejecting unknown fields.
func strictProviderConfig(t *testing.T, stdout string) *kubeletconfigv1.CredentialProviderConfig {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := kubeletconfigv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	obj, _, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode([]byte(stdout), nil, nil)
	if err != nil {
		t.Fatalf("strict decode: %v\n%s", err, stdout)
	}
	return obj.(*kubeletconfigv1.CredentialProviderConfig)
}
