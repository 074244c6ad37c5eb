// Command scaleout measures registry-kit serve on filesystem storage, on S3 (MinIO) with one replica, and on S3 with
// two replicas sharing a Redis cache, in one run: blob push and pull MB/s and manifest GET requests/s over loopback.
// With two replicas the client spreads requests over both, as a Service would. Everything runs on this machine, so
// the replicas, MinIO and Redis share its cores: read the figures as ratios within one run.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
)

var (
	rkBin    = flag.String("rk", "bin/registry-kit", "registry-kit binary")
	stockBin = flag.String("stock", benchserver.DefaultStock, "stock distribution v3.1.2 registry binary (\"\" skips its row)")
	minioBin = flag.String("minio", "/var/cache/registry-kit/bin/minio", "minio binary")
	redisBin = flag.String("redis", "redis-server", "redis-server binary")
	sizeMB   = flag.Int("size-mb", 64, "blob size for push and pull")
	reps     = flag.Int("reps", 4, "blobs pushed (and pulled) per configuration")
	streams  = flag.Int("streams", 2, "concurrent pulls")
	conc     = flag.Int("c", 16, "concurrent manifest requests")
	dur      = flag.Duration("d", 5*time.Second, "manifest load duration")
)

const user = benchserver.User

func main() {
	flag.Parse()
	os.Exit(benchserver.Main("scaleout bench", "rk-scaleout-bench-", run))
}

var procs []*benchserver.Process

// start starts bin with env added to this process's, its output in a log file under dir.
func start(ctx context.Context, dir string, env []string, bin string, args ...string) (*benchserver.Process, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p, err := benchserver.Start(cmd, filepath.Join(dir, fmt.Sprintf("%s-%d.log", filepath.Base(bin), len(procs))))
	if err != nil {
		return nil, err
	}
	procs = append(procs, p)
	return p, nil
}

func stopAll() {
	for _, p := range procs {
		p.Stop()
	}
	procs = nil
}

type result struct {
	name                  string
	pushMBs, pullMBs, rps float64
	headRPS               float64
	// Backend (S3) requests per manifest GET and per blob HEAD under load; -1 on the filesystem.
	getCalls, headCalls float64
}

// s3Counter is a reverse proxy in front of MinIO that counts the requests registry-kit makes to object storage.
// It keeps the Host header, so the clients' SigV4 signatures stay valid.
type s3Counter struct {
	n     atomic.Int64
	proxy *httputil.ReverseProxy
}

func newS3Counter(target string) (*s3Counter, string, error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, "", err
	}
	c := &s3Counter{proxy: httputil.NewSingleHostReverseProxy(u)}
	c.proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	go http.Serve(l, c)
	return c, l.Addr().String(), nil
}

func (c *s3Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.proxy.ServeHTTP(w, r)
}

func run(ctx context.Context, tmp string) error {
	defer stopAll()
	ht, _, password, err := benchserver.WriteHtpasswd(tmp, 5)
	if err != nil {
		return err
	}
	secret := filepath.Join(tmp, "secret")
	if err := os.WriteFile(secret, []byte(rand.Text()), 0o600); err != nil {
		return err
	}

	// MinIO and Redis, shared by the S3 configurations.
	minioAddr, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	consoleAddr, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	minioSecret := rand.Text()
	minio, err := start(ctx, tmp, []string{"MINIO_ROOT_USER=bench-minio", "MINIO_ROOT_PASSWORD=" + minioSecret, "MINIO_BROWSER=off", "MINIO_UPDATE=off"},
		*minioBin, "server", "--quiet", "--address", minioAddr, "--console-address", consoleAddr, filepath.Join(tmp, "minio"))
	if err != nil {
		return err
	}
	if err := minio.WaitReady("http://" + minioAddr + "/minio/health/live"); err != nil {
		return err
	}
	if out, err := exec.Command("curl", "-sSf", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
		"bench-minio:"+minioSecret, "http://"+minioAddr+"/registry").CombinedOutput(); err != nil {
		return fmt.Errorf("creating bucket: %v %s", err, out)
	}
	redisAddr, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	if _, err := start(ctx, tmp, nil, *redisBin, "--bind", "127.0.0.1", "--port", redisPort, "--save", "", "--appendonly", "no",
		"--maxmemory-policy", "allkeys-lru", "--dir", tmp); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)

	counter, s3Addr, err := newS3Counter(minioAddr)
	if err != nil {
		return err
	}
	s3Env := []string{"REGISTRY_KIT_S3_ACCESS_KEY=bench-minio", "REGISTRY_KIT_S3_SECRET_KEY=" + minioSecret}
	serve := func(env []string, extra ...string) (string, error) {
		addr, err := benchserver.FreeAddr()
		if err != nil {
			return "", err
		}
		args := append([]string{"serve", "--addr", addr, "--metrics-addr", "", "--data-dir", filepath.Join(tmp, "data-"+strings.ReplaceAll(addr, ":", "-")),
			"--htpasswd", ht, "--http-secret-file", secret, "--log-level", "warn"}, extra...)
		p, err := start(ctx, tmp, env, *rkBin, args...)
		if err != nil {
			return "", err
		}
		return addr, p.WaitReady("http://" + addr + "/readyz")
	}
	s3Args := func(root string) []string {
		return []string{"--storage", "s3", "--s3-endpoint", "http://" + s3Addr, "--s3-secure=false", "--s3-force-path-style",
			"--s3-bucket", "registry", "--s3-root-directory", root, "--redis-addr", redisAddr}
	}
	configs := []struct {
		name  string
		s3    bool
		addrs func() ([]string, error)
	}{
		{"filesystem, 1 replica", false, func() ([]string, error) { a, err := serve(nil); return []string{a}, err }},
		{"s3 + redis, 1 replica", true, func() ([]string, error) { a, err := serve(s3Env, s3Args("/one")...); return []string{a}, err }},
		{"s3 + redis, 2 replicas", true, func() ([]string, error) {
			a, err := serve(s3Env, s3Args("/two")...)
			if err != nil {
				return nil, err
			}
			b, err := serve(s3Env, s3Args("/two")...)
			return []string{a, b}, err
		}},
	}
	if *stockBin != "" {
		configs = append(configs, struct {
			name  string
			s3    bool
			addrs func() ([]string, error)
		}{"stock v3.1.2, s3 + redis", true, func() ([]string, error) {
			addr, err := benchserver.FreeAddr()
			if err != nil {
				return nil, err
			}
			dir := filepath.Join(tmp, "stock")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			p, err := benchserver.StartStock(ctx, *stockBin, dir, benchserver.StockConfig{
				Addr: addr, LogLevel: "warn", Htpasswd: ht, Redis: redisAddr,
				S3: &benchserver.StockS3{Endpoint: "http://" + s3Addr, Bucket: "registry", RootDirectory: "/stock",
					AccessKey: "bench-minio", SecretKey: minioSecret},
			})
			if err != nil {
				return nil, err
			}
			procs = append(procs, p)
			return []string{addr}, p.WaitRegistry(addr)
		}})
	}
	var results []result
	for _, c := range configs {
		addrs, err := c.addrs()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var calls *atomic.Int64
		if c.s3 {
			calls = &counter.n
		}
		r, err := measure(addrs, password, calls)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		r.name = c.name
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "done: %s\n", c.name)
	}
	fmt.Printf("\n%-24s %10s %10s %15s %9s %9s %15s %10s\n", "configuration", "push MB/s", "pull MB/s", "manifest GET/s",
		"vs fs", "S3/GET", "blob HEAD/s", "S3/HEAD")
	calls := func(v float64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v)
	}
	for _, r := range results {
		fmt.Printf("%-24s %10.1f %10.1f %15.0f %8.2fx %9s %15.0f %10s\n", r.name, r.pushMBs, r.pullMBs, r.rps,
			r.rps/results[0].rps, calls(r.getCalls), r.headRPS, calls(r.headCalls))
	}
	fmt.Printf("\n(%d x %d MiB blobs, %d pull streams, %d clients for %s of manifest GETs and of blob HEADs, all with auth; two\n"+
		"replicas get requests in turn; S3/GET and S3/HEAD are the object-storage requests per request under that load,\n"+
		"counted by a proxy in front of MinIO that every S3 configuration goes through)\n",
		*reps, *sizeMB, *streams, *conc, *dur)
	return nil
}

type client struct {
	addrs    []string
	password string
	next     atomic.Int64
	http     *http.Client
}

func (c *client) pick() string { return c.addrs[int(c.next.Add(1))%len(c.addrs)] }

func (c *client) do(method, addr, path string, body io.Reader, hdr map[string]string) (*http.Response, error) {
	url := path
	if strings.HasPrefix(path, "/") {
		url = "http://" + addr + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(user, c.password)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.http.Do(req)
}

func (c *client) pushBlob(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	dgst := "sha256:" + hex.EncodeToString(sum[:])
	addr := c.pick()
	resp, err := c.do("POST", addr, "/v2/bench/blobs/uploads/", nil, nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 {
		return "", fmt.Errorf("POST upload: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + addr + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, err = c.do("PUT", addr, loc+sep+"digest="+dgst, bytes.NewReader(data), map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("PUT upload: %d", resp.StatusCode)
	}
	return dgst, nil
}

func measure(addrs []string, password string, s3Calls *atomic.Int64) (result, error) {
	c := &client{addrs: addrs, password: password, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var r result
	size := *sizeMB << 20
	var digests []string
	var total time.Duration
	for i := 0; i < *reps; i++ {
		data := make([]byte, size)
		rand.Read(data)
		t0 := time.Now()
		d, err := c.pushBlob(data)
		if err != nil {
			return r, err
		}
		total += time.Since(t0)
		digests = append(digests, d)
	}
	r.pushMBs = float64(*reps**sizeMB) / total.Seconds()

	// Pull every blob, streams at a time.
	t0 := time.Now()
	var wg sync.WaitGroup
	var pullErr atomic.Value
	sem := make(chan struct{}, *streams)
	for _, d := range digests {
		wg.Add(1)
		sem <- struct{}{}
		go func(d string) {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := c.do("GET", c.pick(), "/v2/bench/blobs/"+d, nil, nil)
			if err != nil {
				pullErr.Store(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != int64(size) {
				pullErr.Store(fmt.Errorf("GET blob: %d, %d bytes", resp.StatusCode, n))
			}
		}(d)
	}
	wg.Wait()
	if e := pullErr.Load(); e != nil {
		return r, e.(error)
	}
	r.pullMBs = float64(len(digests)**sizeMB) / time.Since(t0).Seconds()

	// A small image manifest (config = the first blob) tagged "v1", then GETs by tag.
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, digests[0], size)
	resp, err := c.do("PUT", c.pick(), "/v2/bench/manifests/v1", strings.NewReader(manifest),
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if err != nil {
		return r, err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return r, fmt.Errorf("PUT manifest: %d", resp.StatusCode)
	}
	calls := func() int64 {
		if s3Calls == nil {
			return 0
		}
		return s3Calls.Load()
	}
	perRequest := func(before int64, n float64) float64 {
		if s3Calls == nil {
			return -1
		}
		return float64(calls()-before) / n
	}
	before := calls()
	n, err := c.load("GET", "/v2/bench/manifests/v1", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
	if err != nil {
		return r, fmt.Errorf("manifest GET: %w", err)
	}
	r.rps, r.getCalls = n/dur.Seconds(), perRequest(before, n)
	before = calls()
	n, err = c.load("HEAD", "/v2/bench/blobs/"+digests[0], nil)
	if err != nil {
		return r, fmt.Errorf("blob HEAD: %w", err)
	}
	r.headRPS, r.headCalls = n/dur.Seconds(), perRequest(before, n)
	return r, nil
}

// load sends method path from *conc clients for *dur and returns the number of 200 answers; any other answer is an
// error.
func (c *client) load(method, path string, hdr map[string]string) (float64, error) {
	var wg sync.WaitGroup
	var count, failed atomic.Int64
	deadline := time.Now().Add(*dur)
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := c.do(method, c.pick(), path, nil, hdr)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					count.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 0, fmt.Errorf("%d requests failed", failed.Load())
	}
	return float64(count.Load()), nil
}
