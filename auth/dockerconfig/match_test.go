package dockerconfig

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestURLsMatch mirrors the kubelet's TestURLsMatch (pkg/credentialprovider/keyring_test.go).
func TestURLsMatch(t *testing.T) {
	tests := []struct {
		glob, target string
		want         bool
	}{
		{"*.kubernetes.io", "prefix.kubernetes.io", true},
		{"prefix.*.io", "prefix.kubernetes.io", true},
		{"prefix.kubernetes.*", "prefix.kubernetes.io", true},
		{"*-good.kubernetes.io", "prefix-good.kubernetes.io", true},
		{"*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true},
		{"prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true},
		{"*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", true},
		{"prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", true},
		{"*.kubernetes.io", "kubernetes.io", false},
		{"*.*.kubernetes.io", "prefix.kubernetes.io", false},
		{"*.*.kubernetes.io", "kubernetes.io", false},
		{"*kubernetes.io", "a.kubernetes.io", false},
		{"*kubernetes.io", "kubernetes.io", true},
		{"*.*.*.kubernetes.io", "a.b.c.kubernetes.io", true},
		{"kubernetes.io", "kubernetes.com", false},
		{"k*.io", "quay.io", false},
		{"*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", false},
		{"prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", false},
		// registry-kit's own shape: the port is part of the match.
		{"127.0.0.1:5000", "127.0.0.1:5000/app", true},
		{"127.0.0.1:5000", "127.0.0.1/app", false},
		{"127.0.0.1", "127.0.0.1:5000/app", false},
	}
	for _, tt := range tests {
		t.Run(tt.glob+"~"+tt.target, func(t *testing.T) {
			if got := URLsMatch(tt.glob, tt.target); got != tt.want {
				t.Errorf("URLsMatch(%q, %q) = %v, want %v", tt.glob, tt.target, got, tt.want)
			}
		})
	}
}

func keyringWith(key string) *Keyring {
	var k Keyring
	k.Add("", &Config{Auths: map[string]Credential{key: {Username: "foo", Password: "bar", Email: "foo@bar.baz"}}})
	return &k
}

// TestKeyringForGlob mirrors the kubelet's TestDockerKeyringForGlob: entry keys with schemes, globs,
// ports and paths found by lookups of target + "/foo/bar".
func TestKeyringForGlob(t *testing.T) {
	tests := []struct{ key, target string }{
		{"https://hello.kubernetes.io", "hello.kubernetes.io"},
		{"https://*.docker.io", "prefix.docker.io"},
		{"https://prefix.*.io", "prefix.docker.io"},
		{"https://prefix.docker.*", "prefix.docker.io"},
		{"https://*.docker.io/path", "prefix.docker.io/path"},
		{"https://prefix.*.io/path", "prefix.docker.io/path/subpath"},
		{"https://prefix.docker.*/path", "prefix.docker.io/path"},
		{"https://*.docker.io:8888", "prefix.docker.io:8888"},
		{"https://prefix.*.io:8888", "prefix.docker.io:8888"},
		{"https://prefix.docker.*:8888", "prefix.docker.io:8888"},
		{"https://*.docker.io/path:1111", "prefix.docker.io/path:1111"},
		{"https://*.docker.io/v1/", "prefix.docker.io/path:1111"},
		{"https://*.docker.io/v2/", "prefix.docker.io/path:1111"},
		{"https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"},
		{"prefix.docker.io:1111", "prefix.docker.io:1111/path"},
		{"*.docker.io:1111", "prefix.docker.io:1111/path"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := keyringWith(tt.key).lookup(tt.target + "/foo/bar")
			want := []Match{{Key: tt.key, Credential: Credential{Username: "foo", Password: "bar", Email: "foo@bar.baz"}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lookup (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeyringMiss mirrors the kubelet's TestKeyringMiss and TestKeyringMissWithDockerHubCredentials.
func TestKeyringMiss(t *testing.T) {
	tests := []struct{ key, lookup string }{
		{"https://hello.kubernetes.io", "world.mesos.org/foo/bar"},
		{"https://*.docker.com", "prefix.docker.io"},
		{"https://suffix.*.io", "prefix.docker.io"},
		{"https://prefix.docker.c*", "prefix.docker.io"},
		{"https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111"},
		{"suffix.*.io", "prefix.docker.io"},
		{DockerHubKey, "world.mesos.org/foo"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := keyringWith(tt.key).lookup(tt.lookup + "/foo/bar"); len(got) != 0 {
				t.Errorf("lookup(%q) = %d matches, want none", tt.lookup, len(got))
			}
		})
	}
}

// TestKeyringDockerHub mirrors the kubelet's Docker Hub hit tests, and checks pod-spec image names
// (normalized like the kubelet does before looking up) against the keys people use for Docker Hub.
func TestKeyringDockerHub(t *testing.T) {
	tests := []struct {
		name, key, image string
		want             bool
	}{
		{"unqualified", DockerHubKey, "google/docker-registry", true},
		{"unqualified library", DockerHubKey, "jenkins", true},
		{"qualified index", DockerHubKey, "index.docker.io/google/docker-registry", true},
		{"short name", DockerHubKey, "nginx", true},
		{"short name with tag", DockerHubKey, "nginx:1.27", true},
		{"docker.io prefix", DockerHubKey, "docker.io/library/nginx", true},
		{"plain index key", "index.docker.io", "nginx", true},
		{"docker.io key", "docker.io", "nginx", true},
		{"docker.io key with scheme", "https://docker.io", "bitnami/redis", true},
		// The kubelet does not treat registry-1.docker.io as an alias.
		{"registry-1 key is not used", "registry-1.docker.io", "nginx", false},
		{"hub key not used for other registry", DockerHubKey, "quay.io/foo/bar", false},
		{"hub key not used for host:port", DockerHubKey, "localhost:5000/app", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{Auths: map[string]Credential{tt.key: {Username: "u", Password: "p"}}}
			key, _, ok := cfg.Match(tt.image)
			if ok != tt.want {
				t.Fatalf("Match(%q) with key %q: ok = %v, want %v", tt.image, tt.key, ok, tt.want)
			}
			if ok && key != tt.key {
				t.Errorf("Match(%q) key = %q, want %q", tt.image, key, tt.key)
			}
		})
	}
}

// TestIsDefaultRegistryMatch mirrors the kubelet's test of the same name.
func TestIsDefaultRegistryMatch(t *testing.T) {
	tests := map[string]bool{
		"foo/bar": true, "docker.io/foo/bar": true, "index.docker.io/foo/bar": true, "foo": true,
		"": false, "registry.tld/foo/bar": false, "registry:5000/foo/bar": false, "myhostdocker.io/foo/bar": false,
	}
	for image, want := range tests {
		if got := isDefaultRegistryMatch(image); got != want {
			t.Errorf("isDefaultRegistryMatch(%q) = %v, want %v", image, got, want)
		}
	}
}

// TestKeyringLookupOrder mirrors the kubelet's TestDockerKeyringLookup and TestIssue3797.
func TestKeyringLookupOrder(t *testing.T) {
	ada := Credential{Username: "ada", Password: "smash", Email: "ada@example.com"}
	grace := Credential{Username: "grace", Password: "squash", Email: "grace@example.com"}
	rex := Credential{Username: "rex", Password: "tiny arms", Email: "rex@example.com"}
	var k Keyring
	k.Add("s1", &Config{Auths: map[string]Credential{"bar.example.com/pong": grace, "bar.example.com": ada}})
	k.Add("s2", &Config{Auths: map[string]Credential{"https://quay.io/v1/": rex}})
	adaM := Match{Source: "s1", Key: "bar.example.com", Credential: ada}
	graceM := Match{Source: "s1", Key: "bar.example.com/pong", Credential: grace}
	rexM := Match{Source: "s2", Key: "https://quay.io/v1/", Credential: rex}
	tests := []struct {
		repo string
		want []Match
	}{
		{"bar.example.com", []Match{adaM}},
		{"bar.example.com/pong", []Match{graceM, adaM}},
		{"bar.example.com/ping", []Match{adaM}},
		{"bar.example.com/pongz", []Match{graceM, adaM}},
		{"bar.example.com/pong/pang", []Match{graceM, adaM}},
		{"example.com", nil},
		{"foo.example.com", nil},
		{"quay.io", []Match{rexM}},
		{"quay.io/foo", []Match{rexM}},
		{"quay.io/foo/bar", []Match{rexM}},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, k.lookup(tt.repo)); diff != "" {
				t.Errorf("lookup(%q) (-want +got):\n%s", tt.repo, diff)
			}
		})
	}
}

func TestMatchImageReferences(t *testing.T) {
	cfg := &Config{Auths: map[string]Credential{
		"127.0.0.1:5000":            {Username: "a", Password: "1"},
		"http://127.0.0.1:5001/v2/": {Username: "b", Password: "2"},
		"*.corp.example:443/team":   {Username: "c", Password: "3"},
	}}
	tests := []struct {
		image, wantKey string
	}{
		{"127.0.0.1:5000/app:v1", "127.0.0.1:5000"},
		{"127.0.0.1:5000/team/app@sha256:" + fmt.Sprintf("%064d", 0), "127.0.0.1:5000"},
		{"127.0.0.1:5001/app", "http://127.0.0.1:5001/v2/"},
		{"127.0.0.1/app", ""},
		{"127.0.0.1:5002/app", ""},
		{"reg.corp.example:443/team/app", "*.corp.example:443/team"},
		{"reg.corp.example/team/app", ""},
		{"reg.corp.example:443/other/app", ""},
		{"Not A Reference", ""},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			key, _, ok := cfg.Match(tt.image)
			if ok != (tt.wantKey != "") || key != tt.wantKey {
				t.Errorf("Match(%q) = %q, %v; want %q", tt.image, key, ok, tt.wantKey)
			}
		})
	}
}

func TestRegistryHost(t *testing.T) {
	tests := []struct{ image, want, wantErr string }{
		{image: "nginx", want: "docker.io"},
		{image: "docker.io/library/nginx:1", want: "docker.io"},
		{image: "127.0.0.1:5000/app:v1", want: "127.0.0.1:5000"},
		{image: "localhost/app", want: "localhost"},
		{image: "ghcr.io/org/app@sha256:" + fmt.Sprintf("%064d", 0), want: "ghcr.io"},
		{image: "a b", wantErr: `parsing image reference "a b"`},
		{image: "", wantErr: `parsing image reference ""`},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			got, err := RegistryHost(tt.image)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("RegistryHost(%q) error = %v, want %q", tt.image, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("RegistryHost(%q) = %q, %v; want %q", tt.image, got, err, tt.want)
			}
		})
	}
}
