package dockerconfig

import (
	"strings"
	"testing"
)

// FuzzImageReference feeds arbitrary image references (as given to doctor, pull-secret and the credential provider)
// and server names (pull-secret --server) to the reference helpers. Beyond not panicking: a repository starts with its
// registry host, a server key is already normalized (normalizing it again changes nothing), and a config holding that
// key matches an image on that registry the way the kubelet would index it.
func FuzzImageReference(f *testing.F) {
	for _, s := range [][2]string{
		{"nginx", "docker.io"},
		{"127.0.0.1:5000/app:v1", "127.0.0.1:5000"},
		{"reg.example.com/team/app@sha256:" + strings.Repeat("a", 64), "https://reg.example.com/v2/team"},
		{"localhost/app", "http://localhost:5000/"},
		{"[::1]:5000/app:latest", "[::1]:5000"},
		{"UPPER/case", "ftp://reg"},
		{"a/b/c/d/e/f:tag", "*.example.com"},
		{"../../etc/passwd", "reg/../x"},
		{"reg:5000/app:v1@sha256:" + strings.Repeat("0", 64), "user:pass@reg"},
		{"", "reg?x=1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, image, server string) {
		repo, rerr := Repository(image)
		host, herr := RegistryHost(image)
		if (rerr == nil) != (herr == nil) {
			t.Fatalf("Repository and RegistryHost disagree on %q: %v / %v", image, rerr, herr)
		}
		if rerr == nil && !strings.HasPrefix(repo, host+"/") {
			t.Fatalf("repository %q of %q does not start with its host %q", repo, image, host)
		}
		key, _, err := NormalizeServer(server)
		if err != nil {
			return
		}
		again, _, err := NormalizeServer(key)
		if err != nil || again != key {
			t.Fatalf("NormalizeServer(%q) = %q, normalizing that again gives %q, %v", server, key, again, err)
		}
		cfg := &Config{Auths: map[string]Credential{key: {Username: "u", Password: "p"}}}
		if rerr == nil {
			for _, m := range cfg.MatchAll(image) {
				if m.Key != key {
					t.Fatalf("MatchAll(%q) returned unknown key %q", image, m.Key)
				}
			}
		}
		if NormalizeKey(key) == "" {
			t.Fatalf("NormalizeServer(%q) = %q, a key the kubelet cannot parse", server, key)
		}
	})
}
