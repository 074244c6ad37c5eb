package credprovider

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/kubelet/pkg/apis/credentialprovider"
	"k8s.io/kubelet/pkg/apis/credentialprovider/install"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

const testPassword = "pl4in-s3cret" // fake; must never appear in an error

// kubeletDecode decodes a response the way the kubelet's exec plugin does (UniversalDecoder into the
// internal type, all versions installed).
func kubeletDecode(t *testing.T, data []byte) *credentialprovider.CredentialProviderResponse {
	t.Helper()
	scheme := runtime.NewScheme()
	install.Install(scheme)
	obj, gvk, err := serializer.NewCodecFactory(scheme).UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("kubelet cannot decode the response: %v", err)
	}
	if gvk.Kind != "CredentialProviderResponse" {
		t.Fatalf("kind %q", gvk.Kind)
	}
	return obj.(*credentialprovider.CredentialProviderResponse)
}

func testCreds(t *testing.T) *dockerconfig.Config {
	t.Helper()
	payload, err := dockerconfig.Build(
		dockerconfig.Entry{Server: "127.0.0.1:5000", Username: "puller", Password: testPassword},
		dockerconfig.Entry{Server: "reg.example.com/team", Username: "team", Password: "t"},
		dockerconfig.Entry{Server: "http://reg.example.com/v2/", Username: "all", Password: "a"},
		dockerconfig.Entry{Server: dockerconfig.DockerHubKey, Username: "hub", Password: "h"},
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadCredentialsEnv(string(payload))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func request(image string) string {
	return `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"` + image + `"}`
}

func TestServe(t *testing.T) {
	creds := testCreds(t)
	tests := []struct {
		name     string
		in       string
		wantAuth map[string]credentialprovider.AuthConfig
		wantErr  string
	}{
		{
			name:     "matching registry",
			in:       request("127.0.0.1:5000/app:v1"),
			wantAuth: map[string]credentialprovider.AuthConfig{"127.0.0.1:5000": {Username: "puller", Password: testPassword}},
		},
		{
			name: "per-path entries of one host",
			in:   request("reg.example.com/team/app"),
			wantAuth: map[string]credentialprovider.AuthConfig{
				"reg.example.com/team": {Username: "team", Password: "t"},
				"reg.example.com":      {Username: "all", Password: "a"},
			},
		},
		{
			name:     "docker hub short name",
			in:       request("docker.io/library/nginx"),
			wantAuth: map[string]credentialprovider.AuthConfig{"docker.io": {Username: "hub", Password: "h"}},
		},
		{name: "other registry: valid empty answer", in: request("quay.io/org/app")},
		{name: "same host, other port: empty answer", in: request("127.0.0.1:5001/app")},
		{name: "service account fields are accepted", in: `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"quay.io/x","serviceAccountToken":"tok","serviceAccountAnnotations":{"a":"b"}}`},
		{name: "empty input", in: "", wantErr: "empty input"},
		{name: "not JSON", in: "image: nginx", wantErr: "not JSON"},
		{name: "truncated JSON", in: request("x")[:40], wantErr: "not JSON"},
		{name: "old apiVersion", in: `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","image":"x"}`, wantErr: `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1alpha1"`},
		{name: "no apiVersion", in: `{"image":"x"}`, wantErr: `unsupported apiVersion ""`},
		{name: "wrong kind", in: `{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}`, wantErr: `kind "CredentialProviderResponse", want CredentialProviderRequest`},
		{name: "no image", in: request(""), wantErr: "image is empty"},
		{name: "bad image", in: request("Not An Image"), wantErr: `parsing image reference "Not An Image"`},
		{name: "image of the wrong type", in: `{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":5}`, wantErr: "bad credential provider request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Serve(strings.NewReader(tt.in), &out, creds, 7*time.Minute)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want ErrBadRequest containing %q", err, tt.wantErr)
				}
				if out.Len() != 0 {
					t.Error("wrote a response on error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
			resp := kubeletDecode(t, out.Bytes())
			if resp.CacheKeyType != credentialprovider.RegistryPluginCacheKeyType {
				t.Errorf("cacheKeyType %q", resp.CacheKeyType)
			}
			if resp.CacheDuration == nil || resp.CacheDuration.Duration != 7*time.Minute {
				t.Errorf("cacheDuration %v", resp.CacheDuration)
			}
			if diff := cmp.Diff(tt.wantAuth, resp.Auth); diff != "" {
				t.Errorf("auth (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	good := `{"auths":{"127.0.0.1:5000":{"auth":"` + dockerconfig.EncodeAuth("u", testPassword) + `"}}}`
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantErr       string
	}{
		{name: "root only", content: good, mode: 0o600},
		{name: "read only", content: good, mode: 0o400},
		{name: "world readable", content: good, mode: 0o644, wantErr: "has mode 0644: it holds passwords and must not be accessible to group or others (chmod 600"},
		{name: "group readable", content: good, mode: 0o640, wantErr: "has mode 0640"},
		{name: "not json", content: `{"auths":`, mode: 0o600, wantErr: "invalid JSON"},
		{name: "no auths", content: `{"127.0.0.1:5000":{}}`, mode: 0o600, wantErr: `no "auths" object`},
		{name: "empty auths", content: `{"auths":{}}`, mode: 0o600, wantErr: `no registries under "auths"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadCredentialsFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Error("error contains the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, c, ok := cfg.Match("127.0.0.1:5000/app"); !ok || c.Password != testPassword {
				t.Error("credentials not loaded")
			}
		})
	}
	if _, err := LoadCredentialsFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}
