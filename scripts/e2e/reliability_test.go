//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// bigBlobSize is the blob the crash test streams, as the issue asks: 1 GiB, generated on the fly (never held in
// memory) and hashed while it is sent.
const bigBlobSize = 1 << 30

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

// uploadBlobHashed is uploadBlob for a body whose digest is not known in advance: it hashes the body while the PATCH
// streams it and completes the upload with that digest, which it returns.
func (r *regClient) uploadBlobHashed(repo string, body io.Reader) (digest string, status int, err error) {
	resp, err := r.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", resp.StatusCode, fmt.Errorf("starting upload: status %d", resp.StatusCode)
	}
	h := sha256.New()
	resp, err = r.do("PATCH", resp.Header.Get("Location"), http.Header{"Content-Type": {"application/octet-stream"}},
		io.NopCloser(io.TeeReader(body, h)))
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", resp.StatusCode, fmt.Errorf("streaming the blob: status %d", resp.StatusCode)
	}
	digest = fmt.Sprintf("sha256:%x", h.Sum(nil))
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	status, err = r.status("PUT", loc+sep+"digest="+digest, nil, nil)
	return digest, status, err
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

// storedBlobs lists the blobs committed to the filesystem storage under dataDir: digest -> size.
func storedBlobs(t *testing.T, dataDir string) map[string]int64 {
	t.Helper()
	root := filepath.Join(dataDir, "docker", "registry", "v2", "blobs", "sha256")
	out := map[string]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "data" {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out["sha256:"+filepath.Base(filepath.Dir(p))] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("listing blobs: %v", err)
	}
	return out
}

// TestCrashDuringBlobUpload kills serve with SIGKILL in the middle of a 1 GiB streamed blob upload: after a restart
// every image committed before still pulls with matching digests and the storage is consistent, the interrupted
// blob is neither committed nor linked into its repository, and the whole push (the blob, a config and a manifest
// naming it) succeeds when retried; the blob then reads back byte for byte.
func TestCrashDuringBlobUpload(t *testing.T) {
	testStart := time.Now()
	srv := startServe(t)
	images := map[string]v1.Hash{}
	for i := range 3 {
		tag := fmt.Sprintf("crash/base:v%d", i)
		images[tag] = pushRandom(t, srv, tag, 2)
	}
	const seed = 7
	rc := newRegClient(srv)

	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		_, _, err := rc.uploadBlobHashed("crash/big", streamOf(seed, bigBlobSize, &sent))
		done <- err
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for sent.Load() < bigBlobSize/2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := sent.Load(); n < bigBlobSize/2 || n >= bigBlobSize {
		t.Fatalf("%d MiB of %d MiB sent when the server was to be killed, want about half", n>>20, bigBlobSize>>20)
	}
	srv.Kill()
	t.Logf("killed serve with SIGKILL after %d MiB of %d MiB were sent (%s after the test began)",
		sent.Load()>>20, bigBlobSize>>20, time.Since(testStart).Round(time.Millisecond))
	if err := <-done; err == nil {
		t.Fatal("the interrupted upload reported success")
	}
	recovery := restartTimed(srv)
	t.Logf("recovery after SIGKILL mid-upload: restart -> healthy in %s", recovery.Round(time.Millisecond))

	checkPulls(t, srv, images)
	checkStorage(t, srv.DataDir)
	before := storedBlobs(t, srv.DataDir)
	for d, size := range before {
		if size >= bigBlobSize/2 {
			t.Errorf("a %d MiB blob %s is committed after the interrupted upload", size>>20, d)
		}
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, "docker/registry/v2/repositories/crash/big/_layers")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the interrupted upload's repository has layer links: %v", err)
	}

	start := time.Now()
	want, st, err := rc.uploadBlobHashed("crash/big", streamOf(seed, bigBlobSize, nil))
	if err != nil || st != http.StatusCreated {
		t.Fatalf("retrying the upload: status %d, %v", st, err)
	}
	if _, ok := before[want]; ok {
		t.Errorf("the interrupted blob %s was committed before the retry", want)
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
	if st, err := rc.uploadBlob("crash/big", bytes.NewReader(config), configDigest); err != nil || st != http.StatusCreated {
		t.Fatalf("pushing the config: status %d, %v", st, err)
	}
	ct := "application/vnd.oci.image.manifest.v1+json"
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		ct, configDigest, len(config), want, bigBlobSize)
	if st, err := rc.status("PUT", "/v2/crash/big/manifests/v1", http.Header{"Content-Type": {ct}}, bytes.NewReader(manifest)); err != nil || st != http.StatusCreated {
		t.Fatalf("putting the manifest: status %d, %v", st, err)
	}
	t.Logf("retried push of the 1 GiB layer, config and manifest took %s", time.Since(start).Round(time.Millisecond))

	resp, err := rc.do("GET", "/v2/crash/big/manifests/v1", http.Header{"Accept": {ct}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, manifest) {
		t.Errorf("crash/big:v1 resolves to %.200s, want the pushed manifest", got)
	}
	resp, err = rc.do("GET", "/v2/crash/big/blobs/"+want, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, _ := io.Copy(h, resp.Body)
	resp.Body.Close()
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != want || n != bigBlobSize {
		t.Errorf("the retried blob reads back as %d bytes with digest %s, want %d bytes %s", n, got, bigBlobSize, want)
	}
	t.Logf("crash test with a 1 GiB blob took %s in all", time.Since(testStart).Round(time.Millisecond))
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
