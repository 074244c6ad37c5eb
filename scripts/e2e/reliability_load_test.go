//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// serverErrors counts responses with a 5xx status seen by the clients that use it.
type serverErrors struct {
	base http.RoundTripper
	n    atomic.Int64
	last atomic.Value // string
}

func (s *serverErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && resp.StatusCode >= 500 {
		s.n.Add(1)
		s.last.Store(fmt.Sprintf("%s %s: %d", r.Method, r.URL.Path, resp.StatusCode))
	}
	return resp, err
}

// TestConcurrentPushPull runs 16 go-containerregistry clients for 20 s that push images sharing base layers to
// overlapping repositories and tags (the same tags re-pushed with other content) and pull them back. No client may
// see a 5xx; afterwards the storage checker finds every tag's manifest and every blob it names present and
// digest-correct, and every tag pulls and validates through the API.
func TestConcurrentPushPull(t *testing.T) {
	srv := startServe(t)
	bases := make([]v1.Layer, 3)
	for i := range bases {
		l, err := random.Layer(512<<10, "application/vnd.oci.image.layer.v1.tar")
		if err != nil {
			t.Fatal(err)
		}
		bases[i] = l
	}
	counter := &serverErrors{base: http.DefaultTransport}
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: srv.User, Password: srv.Password}), remote.WithTransport(counter)}
	const clients = 16
	deadline := time.Now().Add(20 * time.Second)
	type result struct{ pushes, pulls, errs int }
	results := make(chan result, clients)
	errs := make(chan error, clients*4)
	for c := range clients {
		go func() {
			var r result
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for time.Now().Before(deadline) {
				ref, _ := name.ParseReference(fmt.Sprintf("%s/conc/app%d:t%d", srv.Addr, rng.IntN(4), rng.IntN(3)), name.Insecure)
				if rng.IntN(2) == 0 {
					own, err := random.Layer(64<<10, "application/vnd.oci.image.layer.v1.tar")
					if err != nil {
						errs <- err
						break
					}
					img, err := mutateLayers(bases[:1+rng.IntN(len(bases))], own)
					if err == nil {
						err = remote.Write(ref, img, opts...)
					}
					if err != nil {
						r.errs++
						select {
						case errs <- fmt.Errorf("push %s: %w", ref, err):
						default:
						}
						continue
					}
					r.pushes++
					continue
				}
				img, err := remote.Image(ref, opts...)
				if err == nil {
					err = validate.Image(img)
				}
				if err != nil && !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
					r.errs++
					select {
					case errs <- fmt.Errorf("pull %s: %w", ref, err):
					default:
					}
					continue
				}
				r.pulls++
			}
			results <- r
		}()
	}
	var total result
	for range clients {
		r := <-results
		total.pushes, total.pulls, total.errs = total.pushes+r.pushes, total.pulls+r.pulls, total.errs+r.errs
	}
	t.Logf("16 clients for 20s: %d pushes, %d pulls, %d errors, %d responses with 5xx", total.pushes, total.pulls, total.errs, counter.n.Load())
	if n := counter.n.Load(); n > 0 {
		t.Errorf("clients saw %d responses with a 5xx status, the last: %v", n, counter.last.Load())
	}
	close(errs)
	for err := range errs {
		t.Errorf("client error: %v", err)
	}
	if total.pushes == 0 || total.pulls == 0 {
		t.Errorf("the load did nothing useful: %+v", total)
	}
	tags := checkStorage(t, srv.DataDir)
	t.Logf("storage checker: %d tags consistent", len(tags))
	images := map[string]v1.Hash{}
	for repoTag, d := range tags {
		h, _ := v1.NewHash(d)
		images[repoTag] = h
	}
	checkPulls(t, srv, images)
}

// mutateLayers builds an OCI image from layers.
func mutateLayers(layers []v1.Layer, extra v1.Layer) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	return mutate.AppendLayers(img, append(append([]v1.Layer{}, layers...), extra)...)
}

// checkStorage walks distribution's filesystem layout under dataDir and checks that every tag links to a manifest
// revision of its repository whose data is present and sha256-correct, and that every blob the manifest names (config,
// layers, or the manifests of an index) is linked into the repository and present with the right digest. It returns
// repo:tag -> manifest digest.
func checkStorage(t testing.TB, dataDir string) map[string]string {
	t.Helper()
	root := filepath.Join(dataDir, "docker", "registry", "v2")
	verified := map[string]bool{}
	blob := func(d string) ([]byte, bool) {
		alg, hex, ok := strings.Cut(d, ":")
		if !ok || alg != "sha256" || len(hex) != 64 {
			t.Errorf("malformed digest %q in storage", d)
			return nil, false
		}
		data, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", hex[:2], hex, "data"))
		if err != nil {
			t.Errorf("blob %s: %v", d, err)
			return nil, false
		}
		if !verified[d] {
			if got := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != d {
				t.Errorf("blob %s holds data with digest %s", d, got)
				return nil, false
			}
			verified[d] = true
		}
		return data, true
	}
	link := func(repoDir, kind, d string) {
		_, hex, _ := strings.Cut(d, ":")
		b, err := os.ReadFile(filepath.Join(repoDir, kind, "sha256", hex, "link"))
		if err != nil || string(b) != d {
			t.Errorf("%s: %s link for %s: %q, %v", repoDir, kind, d, b, err)
		}
	}
	var checkManifest func(repoDir, d string)
	checkManifest = func(repoDir, d string) {
		link(repoDir, "_manifests/revisions", d)
		data, ok := blob(d)
		if !ok {
			return
		}
		var m struct {
			Config    struct{ Digest string }
			Layers    []struct{ Digest string }
			Manifests []struct{ Digest string }
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Errorf("manifest %s is not JSON: %v", d, err)
			return
		}
		for _, child := range m.Manifests {
			checkManifest(repoDir, child.Digest)
		}
		if m.Config.Digest != "" {
			link(repoDir, "_layers", m.Config.Digest)
			blob(m.Config.Digest)
		}
		for _, l := range m.Layers {
			link(repoDir, "_layers", l.Digest)
			blob(l.Digest)
		}
	}
	tags := map[string]string{}
	repos := filepath.Join(root, "repositories")
	err := filepath.WalkDir(repos, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "link" || !strings.HasSuffix(filepath.Dir(p), "/current") {
			return err
		}
		rel, _ := filepath.Rel(repos, p) // REPO/_manifests/tags/TAG/current/link
		repo, rest, ok := strings.Cut(rel, "/_manifests/tags/")
		if !ok {
			return nil
		}
		tag := strings.TrimSuffix(rest, "/current/link")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		tags[repo+":"+tag] = string(b)
		checkManifest(filepath.Join(repos, repo), string(b))
		return nil
	})
	if err != nil {
		t.Fatalf("walking the storage: %v", err)
	}
	if len(tags) == 0 {
		t.Error("the storage checker found no tags")
	}
	return tags
}

// pullLatencies pulls the manifest and the layer of repo:tag n times and returns each pull's duration, sorted.
func pullLatencies(t *testing.T, rc *regClient, repo, tag, layer string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	accept := http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}
	for range n {
		start := time.Now()
		for _, p := range []string{"/v2/" + repo + "/manifests/" + tag, "/v2/" + repo + "/blobs/" + layer} {
			if st, err := rc.status("GET", p, accept, nil); err != nil || st != http.StatusOK {
				t.Fatalf("authenticated pull of %s: %d %v", p, st, err)
			}
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// TestAuthUnderAttack measures an authenticated client's pulls (from 127.0.0.1) with and without a flood of wrong
// passwords from 64 connections of another address (127.0.0.2), for the admin user and for a user that does not exist.
// The p99 under the
// flood must stay within 3x the quiet p99 plus 20 ms, and every rejected request gets the same 401, whether the user
// exists, the password is wrong or the client is throttled.
func TestAuthUnderAttack(t *testing.T) {
	srv := startServe(t)
	auth := basicHeader(srv.User, srv.Password)
	layer := bytes.Repeat([]byte("auth flood layer "), 4096)
	pushImageRaw(t, srv.Addr, auth, "flood/app", "v1", layer)
	rc := newRegClient(srv)
	const pulls, workers = 2000, 64
	pullLatencies(t, rc, "flood/app", "v1", sha(layer), 20) // warm the connection and the credential cache
	quiet := pullLatencies(t, rc, "flood/app", "v1", sha(layer), pulls)

	attacker := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
		MaxIdleConnsPerHost: workers,
	}}
	type shape struct {
		status              int
		challenge, ct, body string
	}
	var attempts atomic.Int64
	shapes := make(chan map[shape]int, workers)
	stop := make(chan struct{})
	for w := range workers {
		go func() {
			seen := map[shape]int{}
			defer func() { shapes <- seen }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := "admin"
				if (i+w)%2 == 1 {
					user = "ghost" // does not exist
				}
				req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/v2/flood/app/manifests/v1", nil)
				req.SetBasicAuth(user, fmt.Sprintf("wrong-%d-%d", w, i))
				resp, err := attacker.Do(req)
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				attempts.Add(1)
				seen[shape{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Content-Type"), string(body)}]++
			}
		}()
	}
	time.Sleep(time.Second) // let the budgets run out: the rest of the flood is throttled
	flood := pullLatencies(t, rc, "flood/app", "v1", sha(layer), pulls)
	close(stop)
	all := map[shape]int{}
	for range workers {
		for s, n := range <-shapes {
			all[s] += n
		}
	}
	qp50, qp99, fp50, fp99 := percentile(quiet, .5), percentile(quiet, .99), percentile(flood, .5), percentile(flood, .99)
	t.Logf("authenticated pull (manifest+blob): quiet p50 %s p99 %s; during a flood of %d wrong passwords from 127.0.0.2: p50 %s p99 %s",
		qp50.Round(time.Microsecond), qp99.Round(time.Microsecond), attempts.Load(), fp50.Round(time.Microsecond), fp99.Round(time.Microsecond))
	if fp99 > 3*qp99+20*time.Millisecond {
		t.Errorf("p99 under the flood %s is more than 3x the quiet p99 %s + 20ms", fp99, qp99)
	}
	if len(all) != 1 {
		for s, n := range all {
			t.Errorf("%d responses: status %d, challenge %q, content type %q, body %.200s", n, s.status, s.challenge, s.ct, s.body)
		}
		t.Errorf("rejected requests got %d different answers, want one", len(all))
	}
	for s := range all {
		if s.status != http.StatusUnauthorized {
			t.Errorf("a rejected request got status %d, want 401", s.status)
		}
	}
	if attempts.Load() < 100 { // throttled answers are delayed like bcrypt, so 64 connections send a few dozen a second
		t.Errorf("the flood sent only %d requests", attempts.Load())
	}
}

// recordingTB keeps the errors reported to it instead of failing the test.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }

// TestStorageCheckerDetectsDamage shows the storage checker can fail: a flipped byte in a layer, a missing layer link
// and a tag pointing at a missing manifest are each reported.
func TestStorageCheckerDetectsDamage(t *testing.T) {
	srv := startServe(t)
	d := pushRandom(t, srv, "check/app:v1", 2)
	srv.Stop()
	root := filepath.Join(srv.DataDir, "docker", "registry", "v2")
	if r := (&recordingTB{TB: t}); len(checkStorage(r, srv.DataDir)) != 1 || len(r.errs) != 0 {
		t.Fatalf("the intact storage does not check clean: %q", r.errs)
	}
	mf, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", d.Hex[:2], d.Hex, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal(mf, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("reading the manifest: %v", err)
	}
	layerHex := strings.TrimPrefix(m.Layers[0].Digest, "sha256:")
	layerData := filepath.Join(root, "blobs", "sha256", layerHex[:2], layerHex, "data")
	layerLink := filepath.Join(root, "repositories", "check", "app", "_layers", "sha256", layerHex, "link")
	tagLink := filepath.Join(root, "repositories", "check", "app", "_manifests", "tags", "v1", "current", "link")
	for _, c := range []struct {
		name, file, want string
		damage           func(orig []byte) []byte // nil removes the file
	}{
		{"flipped byte in a layer", layerData, "holds data with digest", func(b []byte) []byte {
			c := bytes.Clone(b)
			c[len(c)/2] ^= 1
			return c
		}},
		{"missing layer link", layerLink, "_layers link", nil},
		{"tag to a missing manifest", tagLink, "blob sha256:" + strings.Repeat("e", 64), func([]byte) []byte { return []byte("sha256:" + strings.Repeat("e", 64)) }},
	} {
		orig, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if c.damage == nil {
			err = os.Remove(c.file)
		} else {
			err = os.WriteFile(c.file, c.damage(orig), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		r := &recordingTB{TB: t}
		checkStorage(r, srv.DataDir)
		if !slices.ContainsFunc(r.errs, func(e string) bool { return strings.Contains(e, c.want) }) {
			t.Errorf("%s: the checker reported %q, want a message containing %q", c.name, r.errs, c.want)
		}
		if err := os.WriteFile(c.file, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthLogsDoNotTellUsersApart sends the same run of wrong passwords for an existing and an unknown user, each
// from its own address: every response is the same 401 and the log lines, user name aside, are the same.
func TestAuthLogsDoNotTellUsersApart(t *testing.T) {
	srv := startServe(t)
	bodies := map[string]bool{}
	for i, user := range []string{"admin", "ghost"} {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(3+i))}}).DialContext,
		}}
		for j := range 14 {
			req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/v2/", nil)
			req.SetBasicAuth(user, fmt.Sprintf("wrong-%d", j))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies[fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)] = true
		}
	}
	if len(bodies) != 1 {
		t.Errorf("wrong passwords for an existing and an unknown user got different answers: %q", slices.Sorted(maps.Keys(bodies)))
	}
	lines := map[string]map[string]bool{"admin": {}, "ghost": {}}
	userRE := regexp.MustCompile(`user(\.name)?="?(admin|ghost)"?`)
	for _, l := range strings.Split(srv.Output(), "\n") {
		m := userRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		l = regexp.MustCompile(`^time=\S+ `).ReplaceAllString(l, "")
		l = regexp.MustCompile(`client=\S+|http\.request\.(id|remoteaddr)=\S+ ?|http\.response\.duration=\S+ ?`).ReplaceAllString(l, "")
		lines[m[2]][userRE.ReplaceAllString(l, "user=U")] = true
	}
	if len(lines["admin"]) == 0 {
		t.Error("the server logged no failed authentication")
	}
	if !maps.Equal(lines["admin"], lines["ghost"]) {
		t.Errorf("the log differs for an existing and an unknown user:\nadmin: %q\nghost: %q", slices.Sorted(maps.Keys(lines["admin"])), slices.Sorted(maps.Keys(lines["ghost"])))
	}
}
