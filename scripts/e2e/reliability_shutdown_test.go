//go:build e2e

package e2e

import (
	"fmt"
	"io"
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

	"github.com/registry-kit/registry-kit/internal/lockedbuf"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

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
	var out lockedbuf.Buffer
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

// TestDiskFull serves from a 64 MiB tmpfs that a push overflows: the client gets 507 Insufficient Storage naming the
// cause and not the server's paths, the registry keeps serving reads and earlier images stay intact, and the push
// succeeds once space is freed.
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
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("the overflowing push got status %d, want 507 Insufficient Storage", resp.StatusCode)
	}
	if !strings.Contains(strings.ToLower(string(body)), "no space left") {
		t.Errorf("the error does not say the disk is full: status %d %.300s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), dataDir) {
		t.Errorf("the error shows the client the server's storage path: %.300s", body)
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
