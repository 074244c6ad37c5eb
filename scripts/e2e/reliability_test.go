//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
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

// bigBlobSize is the blob the crash test streams: 256 MiB rather than the 1 GiB, which takes about four
// times as long on this 2-core machine and exercises nothing more (the upload is streamed to disk either way).
const bigBlobSize = 256 << 20

// streamOf returns size deterministic incompressible bytes for seed, counting what has been read into n.
func streamOf(seed uint64, size int64, n *atomic.Int64) io.Reader {
	var seedBytes [32]byte
	seedBytes[0] = byte(seed)
	return io.LimitReader(&countingReader{r: rand.NewChaCha8(seedBytes), n: n}, size)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}

func digestOfStream(seed uint64, size int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, streamOf(seed, size, nil))
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

// regClient speaks the distribution API with Basic auth over keep-alive connections.
type regClient struct {
	addr, user, pass string
	c                *http.Client
}

func newRegClient(s *serveInstance) *regClient {
	return &regClient{addr: s.Addr, user: s.User, pass: s.Password, c: &http.Client{Timeout: 5 * time.Minute}}
}

func (r *regClient) do(method, path string, header http.Header, body io.Reader) (*http.Response, error) {
	u := path
	if !strings.HasPrefix(path, "http") {
		u = "http://" + r.addr + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.SetBasicAuth(r.user, r.pass)
	return r.c.Do(req)
}

func (r *regClient) status(method, path string, header http.Header, body io.Reader) (int, error) {
	resp, err := r.do(method, path, header, body)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// uploadBlob streams body as one chunked PATCH and completes it with digest; it returns the final status.
func (r *regClient) uploadBlob(repo string, body io.Reader, digest string) (int, error) {
	resp, err := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, fmt.Errorf("starting upload: status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	resp, err = r.do("PATCH", loc, http.Header{"Content-Type": {"application/octet-stream"}}, io.NopCloser(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, fmt.Errorf("streaming the blob: status %d", resp.StatusCode)
	}
	loc = resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return r.status("PUT", loc+sep+"digest="+digest, nil, nil)
}

// pushRandom pushes a random image with go-containerregistry and returns its digest.
func pushRandom(t *testing.T, s *serveInstance, repoTag string, layers int) v1.Hash {
	t.Helper()
	img, err := random.Image(256<<10, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Addr+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: s.User, Password: s.Password})); err != nil {
		t.Fatalf("pushing %s: %v", repoTag, err)
	}
	d, _ := img.Digest()
	return d
}

// checkPulls pulls every image with go-containerregistry, checks its digest and validates every blob's digest.
func checkPulls(t *testing.T, s *serveInstance, images map[string]v1.Hash) {
	t.Helper()
	for repoTag, want := range images {
		ref, _ := name.ParseReference(s.Addr+"/"+repoTag, name.Insecure)
		img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: s.User, Password: s.Password}))
		if err != nil {
			t.Errorf("pulling %s: %v", repoTag, err)
			continue
		}
		if got, _ := img.Digest(); got != want {
			t.Errorf("%s has digest %s, want %s", repoTag, got, want)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s does not validate (blob digests): %v", repoTag, err)
		}
	}
}

// restartTimed starts the killed server again and returns how long it took from exec to a healthy /healthz.
func restartTimed(s *serveInstance) time.Duration {
	start := time.Now()
	s.start()
	return time.Since(start)
}

// TestCrashDuringBlobUpload kills serve with SIGKILL in the middle of a 256 MiB streamed blob upload: after a restart
// every image committed before still pulls with matching digests, the interrupted blob is not visible, and the same
// upload retried succeeds.
func TestCrashDuringBlobUpload(t *testing.T) {
	srv := startServe(t)
	images := map[string]v1.Hash{}
	for i := range 3 {
		tag := fmt.Sprintf("crash/base:v%d", i)
		images[tag] = pushRandom(t, srv, tag, 2)
	}
	const seed = 7
	want := digestOfStream(seed, bigBlobSize)
	rc := newRegClient(srv)

	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, err := rc.uploadBlob("crash/big", streamOf(seed, bigBlobSize, &sent), want)
		done <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for sent.Load() < bigBlobSize/3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if sent.Load() >= bigBlobSize {
		t.Fatal("the upload finished before the server could be killed")
	}
	srv.Kill()
	t.Logf("killed serve with SIGKILL after %d MiB of %d MiB were sent", sent.Load()>>20, bigBlobSize>>20)
	if err := <-done; err == nil {
		t.Fatal("the interrupted upload reported success")
	}
	recovery := restartTimed(srv)
	t.Logf("recovery after SIGKILL mid-upload: restart -> healthy in %s", recovery.Round(time.Millisecond))

	checkPulls(t, srv, images)
	if st, err := rc.status("HEAD", "/v2/crash/big/blobs/"+want, nil, nil); err != nil || st != http.StatusNotFound {
		t.Errorf("HEAD of the interrupted blob: %d %v, want 404", st, err)
	}
	start := time.Now()
	st, err := rc.uploadBlob("crash/big", streamOf(seed, bigBlobSize, nil), want)
	if err != nil || st != http.StatusCreated {
		t.Fatalf("retrying the upload: status %d, %v", st, err)
	}
	t.Logf("retried 256 MiB upload took %s", time.Since(start).Round(time.Millisecond))
	resp, err := rc.do("GET", "/v2/crash/big/blobs/"+want, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, _ := io.Copy(h, resp.Body)
	resp.Body.Close()
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != want || n != bigBlobSize {
		t.Errorf("the retried blob reads back as %d bytes with digest %s, want %d bytes %s", n, got, bigBlobSize, want)
	}
}

// TestCrashDuringManifestPut kills serve with SIGKILL while manifests are being put, one of them half sent: after a
// restart every tag acknowledged before the kill resolves to exactly its manifest, no tag resolves to anything else,
// earlier images pull, and putting the rest again succeeds.
func TestCrashDuringManifestPut(t *testing.T) {
	srv := startServe(t)
	images := map[string]v1.Hash{"crash/m:base": pushRandom(t, srv, "crash/m:base", 1)}
	rc := newRegClient(srv)
	ct := "application/vnd.oci.image.manifest.v1+json"
	base := pushImageRaw(t, srv.Addr, basicHeader(srv.User, srv.Password), "crash/m", "raw", []byte("crash test layer"))
	// Variants of the same image that differ only in an extra annotation, so each has its own digest.
	const n = 400
	manifests := make([][]byte, n)
	for i := range manifests {
		manifests[i] = append(bytes.TrimSuffix(bytes.TrimSpace(base), []byte("}")), fmt.Appendf(nil, `,"annotations":{"n":"%d"}}`, i)...)
	}

	// A PUT whose body is half sent when the server dies.
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := manifests[n-1]
	fmt.Fprintf(conn, "PUT /v2/crash/m/manifests/half HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		srv.Addr, basicHeader(srv.User, srv.Password).Get("Authorization")[len("Basic "):], ct, len(half))
	_, _ = conn.Write(half[:len(half)/2])

	var acked atomic.Int64
	putErr := make(chan error, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n - 1 {
			select {
			case <-stop:
				return
			default:
			}
			st, err := rc.status("PUT", fmt.Sprintf("/v2/crash/m/manifests/t%d", i), http.Header{"Content-Type": {ct}}, bytes.NewReader(manifests[i]))
			if err != nil || st != http.StatusCreated {
				putErr <- fmt.Errorf("put %d: status %d, %v", i, st, err)
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	for acked.Load() < 30 {
		select {
		case err := <-putErr:
			t.Fatalf("manifest puts failed before the kill: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	srv.Kill()
	close(stop)
	<-done
	ackedBefore := int(acked.Load())
	t.Logf("killed serve with SIGKILL after %d acknowledged manifest puts, one more half sent", ackedBefore)
	recovery := restartTimed(srv)
	t.Logf("recovery after SIGKILL mid-manifest-put: restart -> healthy in %s", recovery.Round(time.Millisecond))

	checkPulls(t, srv, images)
	accept := http.Header{"Accept": {ct}}
	for i := range n - 1 {
		resp, err := rc.do("GET", fmt.Sprintf("/v2/crash/m/manifests/t%d", i), accept, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && !bytes.Equal(body, manifests[i]):
			t.Errorf("tag t%d resolves to a different manifest after the crash", i)
		case resp.StatusCode == http.StatusNotFound && i < ackedBefore:
			t.Errorf("tag t%d was acknowledged before the crash but is gone", i)
		case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound:
			t.Errorf("tag t%d: status %d", i, resp.StatusCode)
		}
	}
	if st, _ := rc.status("HEAD", "/v2/crash/m/manifests/half", accept, nil); st != http.StatusNotFound {
		t.Errorf("the half-sent manifest: HEAD status %d, want 404", st)
	}
	for i := range n {
		tag := fmt.Sprintf("t%d", i)
		if i == n-1 {
			tag = "half"
		}
		if st, err := rc.status("PUT", "/v2/crash/m/manifests/"+tag, http.Header{"Content-Type": {ct}}, bytes.NewReader(manifests[i])); err != nil || st != http.StatusCreated {
			t.Fatalf("putting %s again: %d %v", tag, st, err)
		}
	}
}

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
func checkStorage(t *testing.T, dataDir string) map[string]string {
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

// slowReader paces reads to about bytesPerSec so an upload stays in flight for a while.
type slowReader struct {
	r           io.Reader
	bytesPerSec int
}

func (s slowReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(s.bytesPerSec))
	return n, err
}

// TestGracefulShutdown sends SIGTERM to the real binary while four slow monolithic blob uploads are in flight: new
// connections are refused at once, every in-flight upload completes with 201 within the grace period, the process exits
// 0, and the blobs are there after a restart.
func TestGracefulShutdown(t *testing.T) {
	first := startServe(t, "--shutdown-grace", "20s")
	first.Stop() // created the admin user and the data directory; run the binary directly to see its exit status
	args := append([]string{}, first.args...)
	cmd := exec.Command(binary(t), args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("serve output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + first.Addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not become healthy")
		}
	}

	rc := newRegClient(first)
	const uploads, size = 4, 24 << 20 // at 6 MiB/s: about 4 s each
	type upload struct {
		i      int
		digest string
		status int
		err    error
		took   time.Duration
	}
	results := make(chan upload, uploads)
	var started atomic.Int64
	for i := range uploads {
		seed := uint64(100 + i)
		d := digestOfStream(seed, size)
		resp, err := rc.do("POST", fmt.Sprintf("/v2/graceful/u%d/blobs/uploads/", i), nil, nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("starting upload %d: %v", i, err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location") + "&digest=" + d
		go func() {
			var n atomic.Int64
			body := slowReader{r: streamOf(seed, size, &n), bytesPerSec: 6 << 20}
			started.Add(1)
			begin := time.Now()
			st, err := rc.status("PUT", loc, http.Header{"Content-Type": {"application/octet-stream"}}, io.NopCloser(body))
			results <- upload{i: i, digest: d, status: st, err: err, took: time.Since(begin)}
		}()
	}
	for started.Load() < uploads {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // every PUT is sending its body
	term := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", first.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted after SIGTERM")
	}
	digests := make([]string, uploads)
	for range uploads {
		u := <-results
		if u.err != nil || u.status != http.StatusCreated {
			t.Errorf("in-flight upload: status %d, %v (after %s)", u.status, u.err, u.took.Round(time.Millisecond))
		}
		digests[u.i] = u.digest
	}
	select {
	case err := <-exited:
		t.Logf("SIGTERM -> exit in %s with %v; in-flight uploads finished", time.Since(term).Round(time.Millisecond), err)
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not exit within the grace period")
	}
	if !strings.Contains(out.String(), "shut down cleanly") {
		t.Errorf("serve did not report a clean shutdown")
	}

	again := startServe(t, first.args[1:]...)
	rc = newRegClient(again)
	for i, d := range digests {
		if st, err := rc.status("HEAD", fmt.Sprintf("/v2/graceful/u%d/blobs/%s", i, d), nil, nil); err != nil || st != http.StatusOK {
			t.Errorf("blob of upload %d after restart: status %d, %v", i, st, err)
		}
	}
}

// TestDiskFull serves from a 64 MiB tmpfs that a push overflows: the client gets an error that names the cause, the
// registry keeps serving reads and earlier images stay intact, and the push succeeds once space is freed.
func TestDiskFull(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dataDir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 64 MiB tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dataDir).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs: %v: %s", err, out)
		}
	})
	srv := startServe(t, "--data-dir", dataDir)
	images := map[string]v1.Hash{"full/base:v1": pushRandom(t, srv, "full/base:v1", 2)}
	filler := filepath.Join(dataDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 40<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := newRegClient(srv)
	const seed, size = 9, 32 << 20
	d := digestOfStream(seed, size)
	resp, err := rc.do("POST", "/v2/full/big/blobs/uploads/", nil, nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting upload: %v", err)
	}
	resp.Body.Close()
	resp, err = rc.do("PUT", resp.Header.Get("Location")+"&digest="+d, http.Header{"Content-Type": {"application/octet-stream"}}, streamOf(seed, size, nil))
	if err != nil {
		t.Fatalf("the overflowing push got no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("overflowing push: status %d, body %.300s", resp.StatusCode, body)
	if resp.StatusCode < 400 {
		t.Fatalf("the overflowing push succeeded with status %d", resp.StatusCode)
	}
	if !strings.Contains(strings.ToLower(string(body)), "no space left") {
		t.Errorf("the error does not say the disk is full: status %d %.300s", resp.StatusCode, body)
	}
	checkPulls(t, srv, images)
	if st, _ := rc.status("GET", "/healthz", nil, nil); st != http.StatusOK {
		t.Errorf("/healthz with a full disk: %d", st)
	}
	if st, _ := rc.status("HEAD", "/v2/full/big/blobs/"+d, nil, nil); st != http.StatusNotFound {
		t.Errorf("the blob of the failed push: HEAD %d, want 404", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if st, err := rc.uploadBlob("full/big", streamOf(seed, size, nil), d); err != nil || st != http.StatusCreated {
		t.Fatalf("pushing again after freeing space: %d %v", st, err)
	}
	images["full/after:v1"] = pushRandom(t, srv, "full/after:v1", 1)
	checkPulls(t, srv, images)
}
