package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

// startRedis runs a real redis-server on a free loopback port until the test ends.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (scripts/setup.sh installs it): the replica tests need a real Redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--maxmemory-policy", "allkeys-lru", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr
}

// waitDigest polls GET path on ts until it answers digest, and returns how long that took and how many stale
// answers came first; it fails after limit.
func waitDigest(t *testing.T, ts *testServer, path, digest string, limit time.Duration) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	for stale := 0; ; stale++ {
		got := fetch(t, ts.url, AdminUser, ts.password, http.MethodGet, path, nil)
		if got.Header.Get("Docker-Content-Digest") == digest {
			return time.Since(start), stale
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still answers %s %s after %s, want %s", path, got.Header.Get("Docker-Content-Digest"), got.Body, limit, digest)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestManifestCacheReplicas: two replicas on one storage and one Redis. A tag moved through replica A is seen by
// replica B, which had the old manifest cached, within the delivery time of A's invalidation message (asserted
// well below the TTL backstop, peerTTL). With the channel down, B reads from storage; once it is back, B caches
// again and still hears A.
func TestManifestCacheReplicas(t *testing.T) {
	redisAddr := startRedis(t)
	cfg := testConfig(t)
	cfg.LogLevel = "warn"
	cfg.Redis.Addrs = []string{redisAddr}
	cfg.HTTPSecret = "shared-secret-for-both-replicas"
	cfg.MetricsAddr = ""
	// A runs in a child process: distribution registers its Redis metrics per App in the process-wide Prometheus
	// registry, and two such Apps in one process make /metrics fail for the tests that follow (never the case in
	// serve, one App per process).
	a := startChildServer(t, cfg)
	bCfg := cfg
	bCfg.Htpasswd = filepath.Join(cfg.DataDir, "htpasswd") // A created it
	b := startServer(t, bCfg)
	b.password = a.password
	waitLive(t, b)
	const path = "/v2/team/app/manifests/latest"
	const bound = time.Second // the test's allowance for one PUBLISH on loopback; peerTTL is 10s
	var worst time.Duration
	staleAnswers := 0
	for i := range 5 {
		d := pushImage(t, a, "team/app:latest", mustRandom(t))
		took, stale := waitDigest(t, b, path, d.String(), bound)
		worst, staleAnswers = max(worst, took), staleAnswers+stale
		// B serves it from its cache now.
		hits := b.manifests.Stats().Hits
		fetch(t, b.url, AdminUser, b.password, http.MethodGet, path, nil)
		if b.manifests.Stats().Hits == hits {
			t.Fatalf("push %d: B did not cache the manifest", i+1)
		}
	}
	t.Logf("replica B answered the tag moved through A within %s; stale answers after A's response: %d", worst, staleAnswers)
	if peerTTL <= bound {
		t.Errorf("peerTTL %s is no backstop above the pub/sub bound %s", peerTTL, bound)
	}

	// Drop B's subscription: B bypasses its cache until it has subscribed again, then starts empty.
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()
	if err := rc.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	d := pushImage(t, a, "team/app:latest", mustRandom(t))
	_, _ = waitDigest(t, b, path, d.String(), bound)
	waitLive(t, b)
	d = pushImage(t, a, "team/app:latest", mustRandom(t))
	_, _ = waitDigest(t, b, path, d.String(), bound)
}

// waitLive waits until ts's cache answers again (its invalidation subscription is confirmed).
func waitLive(t *testing.T, ts *testServer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ts.manifests.Live(); {
		if time.Now().After(deadline) {
			t.Fatal("the manifest cache did not subscribe to its invalidation channel within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChildServer runs a server with cfg in a child process (this test binary, TestHelperChildServer) until the
// test ends. It has the URL and admin password of a testServer; nothing else.
func startChildServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	l.Close()
	conf, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChildServer$")
	cmd.Env = append(os.Environ(), "REGISTRY_KIT_TEST_CHILD_CONFIG="+string(conf))
	var out lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	ts := &testServer{url: "http://" + cfg.Addr}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if pw, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminPasswordFile)); err == nil {
			if resp, err := http.Get(ts.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ts.password = strings.TrimSpace(string(pw))
					return ts
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child server is not ready after 30s; output:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHelperChildServer is the server startChildServer runs; it does nothing in a normal test run.
func TestHelperChildServer(t *testing.T) {
	conf := os.Getenv("REGISTRY_KIT_TEST_CHILD_CONFIG")
	if conf == "" {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(conf), &cfg); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
