package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, ts.url+path); code != http.StatusOK {
			t.Fatalf("GET %s = %d %q, want 200", path, code, body)
		}
	}

	// Replace the storage root with a file: writes under it now fail, even for root.
	moved := cfg.DataDir + ".moved"
	if err := os.Rename(cfg.DataDir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.DataDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	deadline := time.Now().Add(3 * readinessCacheTTL)
	for code, body = get(t, ts.url+"/readyz"); code != http.StatusServiceUnavailable && time.Now().Before(deadline); code, body = get(t, ts.url+"/readyz") {
		time.Sleep(100 * time.Millisecond)
	}
	// Anyone may ask /readyz: the answer says not ready, never which path failed how.
	if code != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Fatalf("GET /readyz with broken storage = %d %q, want 503 %q", code, body, "not ready\n")
	}
	// The metrics address and the log say why.
	if code, body := get(t, "http://"+ts.MetricsAddr().String()+"/readyz"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "not ready: writing to storage") || !strings.Contains(body, cfg.DataDir) {
		t.Errorf("GET /readyz on the metrics address = %d %q, want 503 naming the failed write", code, body)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `msg="not ready" err="writing to storage`) {
		t.Errorf("the log does not say why the server is not ready:\n%s", logs)
	}
	if code, _ := get(t, ts.url+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200: liveness must not depend on storage", code)
	}

	// Repair: readiness recovers.
	os.Remove(cfg.DataDir)
	if err := os.Rename(moved, cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * readinessCacheTTL)
	for code, _ = get(t, ts.url+"/readyz"); code != http.StatusOK && time.Now().Before(deadline); code, _ = get(t, ts.url+"/readyz") {
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("GET /readyz after repair = %d, want 200", code)
	}
	if !strings.Contains(ts.logs.String(), `msg="ready again"`) {
		t.Error("the log does not say the server is ready again")
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(t))
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/v2/", nil)
	req.SetBasicAuth(AdminUser, ts.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A HEAD for a blob this repository lacks reaches the storage driver (through the fast path's fall-through).
	req, _ = http.NewRequest(http.MethodHead, ts.url+"/v2/a/blobs/sha256:"+strings.Repeat("0", 64), nil)
	req.SetBasicAuth(AdminUser, ts.password)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	code, body := get(t, "http://"+ts.MetricsAddr().String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", code, body)
	}
	for _, want := range []string{
		`registry_http_requests_total{code="200",handler="base",method="get"}`,
		"registry_storage_action_seconds_count",
		`registry_kit_auth_requests_total{result="success"}`,
		`registry_kit_blob_fastpath_requests_total{result="fallthrough"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
			for _, l := range strings.Split(body, "\n") {
				if strings.Contains(l, "fastpath") {
					t.Log(l)
				}
			}
		}
	}
	if code, _ := get(t, ts.url+"/metrics"); code == http.StatusOK {
		t.Error("/metrics is served on the main listener too")
	}
}

func TestMetricsOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsAddr = ""
	ts := startServer(t, cfg)
	if ts.MetricsAddr() != nil {
		t.Errorf("MetricsAddr() = %v with metrics off", ts.MetricsAddr())
	}
}

// TestShutdownLetsUploadFinish cancels the server while a blob PATCH is streaming and checks the upload completes.
func TestShutdownLetsUploadFinish(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	do := func(method, url string, body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, body)
		req.SetBasicAuth(AdminUser, ts.password)
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		return resp
	}
	resp := do(http.MethodPost, ts.url+"/v2/up/blobs/uploads/", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d", resp.StatusCode)
	}
	location := resp.Header.Get("Location")

	data := bytes.Repeat([]byte("registry-kit "), 64<<10) // 832 KiB
	pr, pw := io.Pipe()
	type result struct {
		status int
		err    error
	}
	patched := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, location, pr)
		req.SetBasicAuth(AdminUser, ts.password)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			patched <- result{err: err}
			return
		}
		resp.Body.Close()
		patched <- result{status: resp.StatusCode}
	}()
	half := len(data) / 2
	if _, err := pw.Write(data[:half]); err != nil {
		t.Fatal(err)
	}

	// Stop only once distribution is handling the PATCH: before that, the request could still race the closing of an
	// idle keep-alive connection, which is a client retry matter, not an in-flight upload.
	for deadline := time.Now().Add(10 * time.Second); !inFlight(ts.logs.String(), "PATCH"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the PATCH never reached the handler")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	// Wait for what the old fixed sleep hoped for: shutdown has begun, so the listener is closed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", ts.Addr().String(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open 10s after shutdown began")
		}
	}
	// A Run that does not wait for the upload returns now; give it a moment to show that.
	select {
	case err := <-stopped:
		r := <-patched
		t.Fatalf("Run returned while an upload was in flight: %v (patch: %d %v)\n%s", err, r.status, r.err, ts.logs.String())
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Error("new connections are still accepted during shutdown")
	}
	if _, err := pw.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-patched
	if r.err != nil || r.status != http.StatusAccepted {
		t.Fatalf("PATCH during shutdown: status %d, err %v; want 202", r.status, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run after in-flight upload finished: %v, want nil", err)
	}
}

func TestShutdownGraceExceeded(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownGrace = 200 * time.Millisecond
	ts := startServer(t, cfg)
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/v2/up/blobs/uploads/", nil)
	req.SetBasicAuth(AdminUser, ts.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pr, pw := io.Pipe()
	clientDone := make(chan struct{})
	// The abandoned handler goes on writing upload state for a moment after Run gave up on it: wait for the
	// storage to settle before t.TempDir's cleanup (registered earlier, so run later) removes it.
	t.Cleanup(func() {
		pw.Close()
		<-clientDone
		waitStorageSettled(t, cfg.DataDir)
	})
	go func() {
		defer close(clientDone)
		req, _ := http.NewRequest(http.MethodPatch, resp.Header.Get("Location"), pr)
		req.SetBasicAuth(AdminUser, ts.password)
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte("x")) // the request never finishes
	for deadline := time.Now().Add(10 * time.Second); !inFlight(ts.logs.String(), "PATCH"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the PATCH never reached the handler")
		}
	}
	err = ts.stop()
	if err == nil || !strings.Contains(err.Error(), "in-flight requests did not finish within shutdown-grace 200ms") {
		t.Fatalf("Run = %v, want the grace period error", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Addr = ":99999"
	if _, err := New(cfg); err == nil || err.Error() != "addr: port 99999 out of range" {
		t.Fatalf("New = %v, want the validation error", err)
	}
}

func TestPortInUse(t *testing.T) {
	ts := startServer(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Addr = ts.Addr().String()
	_, err := New(cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "listening on addr "+cfg.Addr+": ") {
		t.Fatalf("New on a port in use = %v, want a listening error", err)
	}
	// The admin user is only created when the server can start, so its one-time notice is never lost.
	if _, err := os.Stat(cfg.HtpasswdPath()); !os.IsNotExist(err) {
		t.Errorf("htpasswd created although the server could not listen: %v", err)
	}
}

func TestNoAuth(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoAuth = true
	ts := startServer(t, cfg)
	if code, body := get(t, ts.url+"/v2/"); code != http.StatusOK {
		t.Errorf("GET /v2/ without auth = %d %q, want 200", code, body)
	}
	if !strings.Contains(ts.notices.String(), "WARNING: authentication is off") {
		t.Errorf("no warning printed: %q", ts.notices.String())
	}
	if !strings.Contains(ts.logs.String(), "AUTHENTICATION IS OFF") {
		t.Error("no warning logged")
	}
	if _, err := os.Stat(cfg.HtpasswdPath()); !os.IsNotExist(err) {
		t.Errorf("htpasswd created with --no-auth: %v", err)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "registry-kit-example-")
	defer os.RemoveAll(dir)

	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.DataDir = "127.0.0.1:0", "", dir
	srv, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()

	resp, err := http.Get("http://" + srv.Addr().String() + "/v2/")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("WWW-Authenticate"))

	cancel()
	fmt.Println("shutdown:", <-done)
	// Output:
	// 401 Unauthorized Basic realm="registry-kit"
	// shutdown: <nil>
}

// inFlight reports whether distribution has authorized a request with this method, so its handler is running.
// waitStorageSettled waits (up to 5s) until the tree under dir stops changing between two looks 100ms apart.
func waitStorageSettled(t *testing.T, dir string) {
	t.Helper()
	snapshot := func() string {
		var b strings.Builder
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				if fi, err := d.Info(); err == nil {
					fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
				}
			}
			return nil
		})
		return b.String()
	}
	prev := snapshot()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		cur := snapshot()
		if cur == prev {
			return
		}
		prev = cur
	}
}

func inFlight(logs, method string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="authorized request"`) && strings.Contains(l, "http.request.method="+method) {
			return true
		}
	}
	return false
}
