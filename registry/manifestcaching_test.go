package registry

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type response struct {
	Status int
	Header http.Header
	Body   string
}

func fetch(t *testing.T, base, user, pass, method, path string, accept []string) response {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if accept != nil {
		req.Header["Accept"] = accept
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	resp.Header.Del("Date")
	return response{resp.StatusCode, resp.Header, string(b)}
}

func pushImage(t *testing.T, ts *testServer, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(ts.url, "http://")+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(ts.auth())); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestManifestCacheMatchesDistribution: every manifest GET and HEAD answered from the cache is byte for byte what
// distribution answers (a second server on the same storage with the cache off), for tags and digests, Docker and
// OCI manifests, and Accept headers that change the answer (an OCI manifest refused to a client that does not
// accept it).
func TestManifestCacheMatchesDistribution(t *testing.T) {
	cfg := testConfig(t)
	cached := startServer(t, cfg)
	off := cfg
	off.ManifestCacheMB = 0
	uncached := startServer(t, off)
	docker := pushImage(t, cached, "team/docker:v1", mustRandom(t))
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(strings.TrimPrefix(cached.url, "http://")+"/team/index:v1", name.Insecure)
	if err := remote.WriteIndex(r, idx, remote.WithAuth(cached.auth())); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	accepts := map[string][]string{
		"none":   nil,
		"docker": {"application/vnd.docker.distribution.manifest.v2+json"},
		"oci":    {"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"},
		"all": {"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
			"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"},
	}
	paths := []string{"/v2/team/docker/manifests/v1", "/v2/team/docker/manifests/" + docker.String(),
		"/v2/team/index/manifests/v1", "/v2/team/index/manifests/" + idxDigest.String()}
	for _, p := range paths {
		for an, accept := range accepts {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				want := fetch(t, uncached.url, AdminUser, cached.password, m, p, accept)
				for i := range 2 {
					got := fetch(t, cached.url, AdminUser, cached.password, m, p, accept)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s %s accept %s (request %d): cached server differs from distribution (-want +got):\n%s", m, p, an, i+1, diff)
					}
				}
			}
		}
	}
	if st := cached.manifests.Stats(); st.Hits == 0 {
		t.Errorf("no request was answered from the cache: %+v", st)
	}
}

// TestManifestCacheTagOverwrite: a tag moved through the API is never served stale by the same process, not even to
// readers that hammer it while it moves; a deleted tag and manifest are gone at once.
func TestManifestCacheTagOverwrite(t *testing.T) {
	cfg := testConfig(t)
	cfg.DeleteEnabled = true
	cfg.LogLevel = "warn"
	ts := startServer(t, cfg)
	const path = "/v2/team/app/manifests/latest"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
					req.SetBasicAuth(AdminUser, ts.password)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	var last v1.Hash
	for i := range 8 {
		last = pushImage(t, ts, "team/app:latest", mustRandom(t))
		for range 3 {
			got := fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, path, nil)
			if d := got.Header.Get("Docker-Content-Digest"); d != last.String() {
				t.Fatalf("push %d: GET after the push answered %s, want the pushed %s", i+1, d, last)
			}
			head := fetch(t, ts.url, AdminUser, ts.password, http.MethodHead, path, nil)
			if d := head.Header.Get("Docker-Content-Digest"); d != last.String() {
				t.Fatalf("push %d: HEAD after the push answered %s, want the pushed %s", i+1, d, last)
			}
		}
	}
	// Deleting the tag, then the manifest.
	if got := fetch(t, ts.url, AdminUser, ts.password, http.MethodDelete, path, nil); got.Status != http.StatusAccepted {
		t.Fatalf("DELETE tag = %d %s", got.Status, got.Body)
	}
	if got := fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, path, nil); got.Status != http.StatusNotFound {
		t.Errorf("GET of a deleted tag = %d, want 404", got.Status)
	}
	byDigest := "/v2/team/app/manifests/" + last.String()
	fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, byDigest, nil) // cached
	if got := fetch(t, ts.url, AdminUser, ts.password, http.MethodDelete, byDigest, nil); got.Status != http.StatusAccepted {
		t.Fatalf("DELETE manifest = %d %s", got.Status, got.Body)
	}
	if got := fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, byDigest, nil); got.Status != http.StatusNotFound {
		t.Errorf("GET of a deleted manifest = %d, want 404", got.Status)
	}
	if st := ts.manifests.Stats(); st.Hits == 0 {
		t.Errorf("the readers were never answered from the cache: %+v", st)
	}
}

// TestManifestCacheAccess: a cached manifest is only given to requests that may pull its repository (the policy
// decides before the cache answers; no credentials or wrong ones get the challenge), and the same tag in two
// repositories answers each repository's own manifest.
func TestManifestCacheAccess(t *testing.T) {
	ps := startPolicyServer(t, testPolicy)
	other := mustRandom(t)
	if err := remote.Write(ps.ref(t, "team-a/x:1"), other, remote.WithAuth(as(AdminUser))); err != nil {
		t.Fatal(err)
	}
	want := map[string]v1.Hash{}
	want["team-b/x"], _ = ps.image.Digest()
	want["team-a/x"], _ = other.Digest()
	for range 2 { // the second round is answered from the cache
		for repo, d := range want {
			code, hdr, _ := ps.do(t, AdminUser, http.MethodGet, "/v2/"+repo+"/manifests/1")
			if code != http.StatusOK || hdr.Get("Docker-Content-Digest") != d.String() {
				t.Errorf("admin GET %s:1 = %d %s, want 200 %s", repo, code, hdr.Get("Docker-Content-Digest"), d)
			}
		}
	}
	if st := ps.manifests.Stats(); st.Hits < 2 {
		t.Fatalf("the second round was not answered from the cache: %+v", st)
	}
	for _, tc := range []struct {
		user, method string
		want         int
	}{
		{"alice", http.MethodGet, http.StatusForbidden}, {"alice", http.MethodHead, http.StatusForbidden},
		{"", http.MethodGet, http.StatusUnauthorized}, {"", http.MethodHead, http.StatusUnauthorized},
		{"wrong", http.MethodGet, http.StatusUnauthorized},
	} {
		code, _, body := ps.do(t, tc.user, tc.method, "/v2/team-b/x/manifests/1")
		if code != tc.want || strings.Contains(body, "schemaVersion") {
			t.Errorf("%s %q on a cached manifest of team-b = %d %q, want %d without the manifest", tc.method, tc.user, code, body, tc.want)
		}
	}
}

// TestManifestCacheOff: --manifest-cache-mb 0 serves everything from storage.
func TestManifestCacheOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.ManifestCacheMB = 0
	ts := startServer(t, cfg)
	if ts.manifests != nil {
		t.Fatal("a manifest cache was built with manifest-cache-mb 0")
	}
	pushImage(t, ts, "a:1", mustRandom(t))
	if got := fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, "/v2/a/manifests/1", nil); got.Status != http.StatusOK {
		t.Errorf("GET = %d", got.Status)
	}
}

// TestManifestCacheAuthenticatesOnce: a manifest request is authenticated once whether the cache answers it or
// passes it to distribution (a wrong password is one failure: one bcrypt run, one unit of the throttle).
func TestManifestCacheAuthenticatesOnce(t *testing.T) {
	ts := startServer(t, testConfig(t))
	pushImage(t, ts, "team/app:v1", mustRandom(t))
	tests := []struct {
		name, path, password string
		status               int
		result               string
	}{
		{"miss: first read", "/v2/team/app/manifests/v1", ts.password, 200, "success"},
		{"hit", "/v2/team/app/manifests/v1", ts.password, 200, "success"},
		{"wrong password on a cached manifest", "/v2/team/app/manifests/v1", "wrong", 401, "failure"},
		{"unknown tag (passed on after success)", "/v2/team/app/manifests/nope", ts.password, 404, "success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted := countAuthentications(t)
			if got := fetch(t, ts.url, AdminUser, tt.password, http.MethodGet, tt.path, nil); got.Status != tt.status {
				t.Errorf("status %d, want %d", got.Status, tt.status)
			}
			counted(tt.result)
		})
	}
}
