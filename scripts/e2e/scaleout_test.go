//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// The scale-out mode with real servers: MinIO as the S3-compatible store, Debian's redis-server as the shared
// blob-descriptor cache, and several `registry-kit serve` processes on the same bucket, Redis, htpasswd file and
// HTTP secret.

const (
	minioUser     = "e2e-minio-user"
	scaleoutUser  = "scaler"
	scaleoutBcost = 5
)

// startScaleDaemon runs a long-lived process in its own process group until the test ends (or stop is called).
func startScaleDaemon(t *testing.T, env []string, prog string, args ...string) (stop func()) {
	t.Helper()
	out := &lockedbuf.Buffer{}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", prog, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(prog), out.String())
		}
	})
	return stop
}

type minioServer struct {
	endpoint string // http://127.0.0.1:PORT
	secret   string // the root password; never print it
}

// startMinIO starts MinIO on loopback with a fresh data directory and a random root password.
func startMinIO(t *testing.T) *minioServer { return startMinIOOn(t, "127.0.0.1") }

// startMinIOOn starts MinIO on host (a local address: 127.0.0.1, or the cluster node's 10.200.0.1 on lo).
func startMinIOOn(t *testing.T, host string) *minioServer {
	t.Helper()
	bin := needTool(t, "minio")
	m := &minioServer{secret: rand.Text()}
	addr := net.JoinHostPort(host, strconv.Itoa(freePortOn(t, host)))
	m.endpoint = "http://" + addr
	startScaleDaemon(t, []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + m.secret, "MINIO_BROWSER=off",
		"MINIO_UPDATE=off", "MINIO_CI_CD=1"},
		bin, "server", "--quiet", "--address", addr, "--console-address", "127.0.0.1:"+strconv.Itoa(freePort(t)), t.TempDir())
	waitFor200(t, m.endpoint+"/minio/health/live", 30*time.Second)
	return m
}

// makeBucket creates a bucket with one SigV4-signed PUT (curl signs it).
func (m *minioServer) makeBucket(t *testing.T, bucket string) {
	t.Helper()
	curl := needTool(t, "curl")
	cmd := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
		"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", minioUser+":"+m.secret, m.endpoint+"/"+bucket)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "200" {
		t.Fatalf("creating bucket %s: %v (HTTP %s)", bucket, err, out)
	}
}

type redisServer struct {
	addr string
	stop func()
}

// startRedis starts redis-server on loopback, without persistence, with the given eviction policy.
func startRedis(t *testing.T, policy string) string { return startRedisCmd(t, policy).addr }

func startRedisCmd(t *testing.T, policy string) *redisServer {
	return startRedisOn(t, "127.0.0.1", policy, "")
}

// startRedisOn starts redis-server on host; a password is required off loopback (protected mode).
func startRedisOn(t *testing.T, host, policy, password string, extra ...string) *redisServer {
	t.Helper()
	bin := needTool(t, "redis-server")
	port := strconv.Itoa(freePortOn(t, host))
	args := []string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no",
		"--maxmemory", "64mb", "--maxmemory-policy", policy, "--dir", t.TempDir()}
	if password != "" {
		args = append(args, "--requirepass", password) // redis-server hides its arguments from ps
	}
	args = append(args, extra...)
	stop := startScaleDaemon(t, nil, bin, args...)
	addr := net.JoinHostPort(host, port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if redisPing(addr, password) == nil {
			return &redisServer{addr: addr, stop: stop}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePortOn returns a TCP port on host that was free a moment ago.
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func redisPing(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if password != "" {
		if _, err := fmt.Fprintf(c, "AUTH %s\r\n", password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH refused")
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func waitFor200(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s (last error %v)", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scaleOut is one bucket, one Redis, one htpasswd file and one HTTP secret that several serve processes share.
type scaleOut struct {
	t                  *testing.T
	minio              *minioServer
	bucket, redis      string
	htpasswd, secret   string
	accessKey, keyFile string
	password           string
}

func newScaleOut(t *testing.T) *scaleOut {
	t.Helper()
	dir := t.TempDir()
	s := &scaleOut{t: t, minio: startMinIO(t), bucket: "registry", redis: startRedis(t, "allkeys-lru"), password: rand.Text()}
	s.minio.makeBucket(t, s.bucket)
	f := htpasswd.New()
	if err := f.Set(scaleoutUser, s.password, scaleoutBcost); err != nil {
		t.Fatal(err)
	}
	s.htpasswd = writeFile0600(t, dir, "htpasswd", f.Bytes())
	s.secret = writeFile0600(t, dir, "http-secret", []byte(rand.Text()))
	s.keyFile = writeFile0600(t, dir, "s3-secret-key", []byte(s.minio.secret+"\n"))
	s.accessKey = writeFile0600(t, dir, "s3-access-key", []byte(minioUser))
	return s
}

func writeFile0600(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// args are the flags of one replica; overrides (flag name -> value) replace or add flags.
func (s *scaleOut) args(overrides map[string]string) []string {
	flags := [][2]string{
		{"--storage", "s3"}, {"--s3-endpoint", s.minio.endpoint}, {"--s3-secure", "false"}, {"--s3-force-path-style", "true"},
		{"--s3-bucket", s.bucket}, {"--s3-root-directory", "/registry"},
		{"--s3-access-key-file", s.accessKey}, {"--s3-secret-key-file", s.keyFile},
		{"--redis-addr", s.redis}, {"--htpasswd", s.htpasswd}, {"--http-secret-file", s.secret}, {"--log-level", "warn"},
	}
	var args []string
	for _, f := range flags {
		if v, ok := overrides[f[0]]; ok {
			f[1] = v
			delete(overrides, f[0])
		}
		args = append(args, f[0]+"="+f[1])
	}
	for k, v := range overrides {
		args = append(args, k+"="+v)
	}
	return args
}

// serve starts one replica and waits until it is ready.
func (s *scaleOut) serve(overrides map[string]string) *serveInstance {
	s.t.Helper()
	inst := startServe(s.t, s.args(overrides)...)
	waitFor200(s.t, "http://"+inst.Addr+"/readyz", 30*time.Second)
	return inst
}

func (s *scaleOut) auth() authn.Authenticator {
	return &authn.Basic{Username: scaleoutUser, Password: s.password}
}

func (s *scaleOut) ref(inst *serveInstance, repoTag string) name.Reference {
	s.t.Helper()
	r, err := name.ParseReference(inst.Addr+"/"+repoTag, name.Insecure)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// push writes a random image through inst and returns it.
func (s *scaleOut) push(inst *serveInstance, repoTag string, layers int) v1.Image {
	s.t.Helper()
	img, err := random.Image(256*1024, int64(layers))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(s.ref(inst, repoTag), img, remote.WithAuth(s.auth())); err != nil {
		s.t.Fatalf("pushing %s through %s: %v", repoTag, inst.Addr, err)
	}
	return img
}

// pullAndVerify pulls repoTag through inst and checks the manifest digest and every layer's bytes.
func (s *scaleOut) pullAndVerify(inst *serveInstance, repoTag string, want v1.Image) {
	s.t.Helper()
	got, err := remote.Image(s.ref(inst, repoTag), remote.WithAuth(s.auth()))
	if err != nil {
		s.t.Fatalf("pulling %s through %s: %v", repoTag, inst.Addr, err)
	}
	wd, _ := want.Digest()
	gd, err := got.Digest()
	if err != nil || gd != wd {
		s.t.Fatalf("manifest digest through %s = %v (%v), want %v", inst.Addr, gd, err, wd)
	}
	layers, err := got.Layers()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			s.t.Fatalf("layer %s through %s: %v", d, inst.Addr, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil || "sha256:"+hex.EncodeToString(h.Sum(nil)) != d.String() {
			s.t.Fatalf("layer %s through %s: read error %v or bytes do not hash to the digest", d, inst.Addr, err)
		}
	}
}

// do sends one authenticated request to inst.
func (s *scaleOut) do(inst *serveInstance, method, pathOrURL string, body []byte, hdr map[string]string) *http.Response {
	s.t.Helper()
	url := pathOrURL
	if strings.HasPrefix(url, "/") {
		url = "http://" + inst.Addr + url
	} else {
		// A Location from another replica: same path and query, this replica's host.
		i := strings.Index(strings.TrimPrefix(url, "http://"), "/")
		url = "http://" + inst.Addr + strings.TrimPrefix(url, "http://")[i:]
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth(scaleoutUser, s.password)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	return resp
}

// expectStatus reads and closes resp, failing unless its status is want; it returns the Location header and the body.
func expectStatus(t *testing.T, what string, resp *http.Response, want int) (string, string) {
	t.Helper()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s: HTTP %d %s, want %d", what, resp.StatusCode, b, want)
	}
	return resp.Header.Get("Location"), string(b)
}

// chunkedUpload uploads data in chunks, sending the POST, each PATCH and the final PUT to the replica that
// order picks in turn, and returns the blob's digest.
func (s *scaleOut) chunkedUpload(repo string, data []byte, chunks int, order []*serveInstance) string {
	s.t.Helper()
	sum := sha256.Sum256(data)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	next := 0
	pick := func() *serveInstance { i := order[next%len(order)]; next++; return i }
	loc, _ := expectStatus(s.t, "starting upload", s.do(pick(), http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil), http.StatusAccepted)
	size := (len(data) + chunks - 1) / chunks
	for off := 0; off < len(data); off += size {
		end := min(off+size, len(data))
		inst := pick()
		loc, _ = expectStatus(s.t, fmt.Sprintf("PATCH bytes %d-%d through %s", off, end-1, inst.Addr),
			s.do(inst, http.MethodPatch, loc, data[off:end], map[string]string{
				"Content-Type":  "application/octet-stream",
				"Content-Range": fmt.Sprintf("%d-%d", off, end-1),
			}), http.StatusAccepted)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	inst := pick()
	expectStatus(s.t, "completing upload through "+inst.Addr, s.do(inst, http.MethodPut, loc+sep+"digest="+dgst, nil, nil), http.StatusCreated)
	return dgst
}

func TestScaleOutPushPullAcrossReplicas(t *testing.T) {
	s := newScaleOut(t)
	a, b := s.serve(nil), s.serve(nil)
	img := s.push(a, "team/app:v1", 3)
	s.pullAndVerify(b, "team/app:v1", img)
	img2 := s.push(b, "team/app:v2", 2)
	s.pullAndVerify(a, "team/app:v2", img2)
	// The blob fast path is filesystem-only: on S3 every blob comes through distribution (proxied, no redirect).
	d, _ := img.ConfigName()
	resp := s.do(b, http.MethodGet, "/v2/team/app/blobs/"+d.String(), nil, nil)
	expectStatus(t, "config blob through "+b.Addr, resp, http.StatusOK)
}

func TestScaleOutChunkedUploadAlternatesReplicas(t *testing.T) {
	s := newScaleOut(t)
	a, b := s.serve(nil), s.serve(nil)
	data := make([]byte, 3*1024*1024+17)
	rand.Read(data)
	dgst := s.chunkedUpload("team/chunks", data, 5, []*serveInstance{a, b})
	for _, inst := range []*serveInstance{a, b} {
		resp := s.do(inst, http.MethodGet, "/v2/team/chunks/blobs/"+dgst, nil, nil)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET the uploaded blob through %s: HTTP %d, %d bytes, err %v; want the %d uploaded bytes",
				inst.Addr, resp.StatusCode, len(got), err, len(data))
		}
	}

	// The trap the required shared secret prevents: a replica with another secret cannot continue the upload
	// (distribution v3.1.2 answers 404 BLOB_UPLOAD_INVALID "invalid secret"; older ones 404 BLOB_UPLOAD_UNKNOWN).
	other := writeFile0600(t, t.TempDir(), "other-secret", []byte(rand.Text()))
	c := s.serve(map[string]string{"--http-secret-file": other})
	loc, _ := expectStatus(t, "starting upload", s.do(a, http.MethodPost, "/v2/team/chunks/blobs/uploads/", nil, nil), http.StatusAccepted)
	resp := s.do(c, http.MethodPatch, loc, []byte("abc"), map[string]string{"Content-Type": "application/octet-stream"})
	if _, body := expectStatus(t, "PATCH through a replica with another secret", resp, http.StatusNotFound); !strings.Contains(body, "BLOB_UPLOAD_INVALID") || !strings.Contains(body, "invalid secret") {
		t.Errorf("PATCH through a replica with another secret answered %s, want BLOB_UPLOAD_INVALID: invalid secret", body)
	}
}

func TestScaleOutDeleteSeenByOtherReplica(t *testing.T) {
	s := newScaleOut(t)
	a, b := s.serve(map[string]string{"--delete-enabled": "true"}), s.serve(map[string]string{"--delete-enabled": "true"})
	img := s.push(a, "team/gone:v1", 2)
	s.pullAndVerify(b, "team/gone:v1", img) // b has now looked everything up (and cached descriptors in Redis)
	md, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()

	expectStatus(t, "DELETE layer through a", s.do(a, http.MethodDelete, "/v2/team/gone/blobs/"+ld.String(), nil, nil), http.StatusAccepted)
	expectStatus(t, "HEAD deleted layer through b", s.do(b, http.MethodHead, "/v2/team/gone/blobs/"+ld.String(), nil, nil), http.StatusNotFound)

	accept := map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json"}
	expectStatus(t, "DELETE manifest through a", s.do(a, http.MethodDelete, "/v2/team/gone/manifests/"+md.String(), nil, nil), http.StatusAccepted)
	expectStatus(t, "GET deleted manifest by digest through b", s.do(b, http.MethodGet, "/v2/team/gone/manifests/"+md.String(), nil, accept), http.StatusNotFound)
	expectStatus(t, "GET tag of deleted manifest through b", s.do(b, http.MethodGet, "/v2/team/gone/manifests/v1", nil, accept), http.StatusNotFound)
}

func TestScaleOutSurvivesAKilledReplica(t *testing.T) {
	s := newScaleOut(t)
	a, b := s.serve(nil), s.serve(nil)
	img := s.push(a, "team/ha:v1", 2)

	// An upload begun on a, half sent, then a dies: b finishes it.
	data := make([]byte, 2*1024*1024)
	rand.Read(data)
	sum := sha256.Sum256(data)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	loc, _ := expectStatus(t, "starting upload through a", s.do(a, http.MethodPost, "/v2/team/ha/blobs/uploads/", nil, nil), http.StatusAccepted)
	half := len(data) / 2
	loc, _ = expectStatus(t, "first half through a", s.do(a, http.MethodPatch, loc, data[:half], map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("0-%d", half-1)}), http.StatusAccepted)
	a.Kill()

	loc, _ = expectStatus(t, "second half through b", s.do(b, http.MethodPatch, loc, data[half:], map[string]string{
		"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", half, len(data)-1)}), http.StatusAccepted)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	expectStatus(t, "completing through b", s.do(b, http.MethodPut, loc+sep+"digest="+dgst, nil, nil), http.StatusCreated)
	s.pullAndVerify(b, "team/ha:v1", img)
	img2 := s.push(b, "team/ha:v2", 1)
	s.pullAndVerify(b, "team/ha:v2", img2)
	waitFor200(t, "http://"+b.Addr+"/readyz", 5*time.Second)

	// A replacement replica joins and sees everything.
	c := s.serve(nil)
	s.pullAndVerify(c, "team/ha:v2", img2)
	expectStatus(t, "HEAD finished upload through the new replica", s.do(c, http.MethodHead, "/v2/team/ha/blobs/"+dgst, nil, nil), http.StatusOK)
}

// TestScaleOutReadinessAndRedisPolicy: /readyz follows the object storage and Redis; a Redis that would not evict
// the cache is reported at startup.
func TestScaleOutReadinessAndRedisPolicy(t *testing.T) {
	s := newScaleOut(t)
	noEvict := startRedis(t, "noeviction")
	inst := s.serve(map[string]string{"--redis-addr": noEvict})
	if out := inst.Output(); !strings.Contains(out, "redis maxmemory-policy is not an allkeys-* policy") || !strings.Contains(out, "noeviction") {
		t.Errorf("no warning about maxmemory-policy noeviction in the serve output:\n%s", out)
	}
	if strings.Contains(inst.Output(), s.minio.secret) {
		t.Fatal("serve output contains the S3 secret key")
	}
	// A managed Redis that refuses CONFIG: the server says it could not check, and still serves.
	noConfig := startRedisOn(t, "127.0.0.1", "allkeys-lru", "", "--rename-command", "CONFIG", "")
	inst = s.serve(map[string]string{"--redis-addr": noConfig.addr})
	if out := inst.Output(); !strings.Contains(out, "could not check the redis maxmemory-policy") {
		t.Errorf("no 'could not check' warning with CONFIG disabled:\n%s", out)
	}
	img := s.push(inst, "team/noconfig:v1", 1)
	s.pullAndVerify(inst, "team/noconfig:v1", img)

	// A bucket that does not exist: the server starts, but is not ready. The registry address says only that (anyone
	// may ask it); the metrics address and the log say why.
	missing := startServe(t, s.args(map[string]string{"--s3-bucket": "no-such-bucket"})...)
	resp, err := http.Get("http://" + missing.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_, body := expectStatus(t, "GET /readyz with a missing bucket", resp, http.StatusServiceUnavailable)
	if body != "not ready\n" {
		t.Errorf("unauthenticated /readyz with a missing bucket = %q, want only %q (no endpoint, bucket or error)", body, "not ready\n")
	}
	resp, err = http.Get("http://" + missing.MetricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_, body = expectStatus(t, "GET /readyz on the metrics address with a missing bucket", resp, http.StatusServiceUnavailable)
	if !strings.Contains(body, "not ready: object storage: ") || !strings.Contains(body, "NoSuchBucket") {
		t.Errorf("/readyz on the metrics address with a missing bucket = %q, want it to name the object storage and NoSuchBucket", body)
	}
	if out := missing.Output(); !strings.Contains(out, "not ready") || !strings.Contains(out, "NoSuchBucket") {
		t.Errorf("the serve log does not say why it is not ready:\n%s", tail(out, 20))
	}

	// Redis goes away: the replica that uses it stops being ready.
	stopRedis := startRedisCmd(t, "allkeys-lru")
	inst2 := s.serve(map[string]string{"--redis-addr": stopRedis.addr})
	stopRedis.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + inst2.MetricsAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "not ready: redis cache: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with redis stopped = %d %q, want 503 naming the redis cache", resp.StatusCode, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
