//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestUploadPurge leaves an upload unfinished (POST and a partial PATCH, never completed) on a server that purges
// uploads older than 2s every second: its directory vanishes within a few seconds, a PATCH to it then gets 404
// BLOB_UPLOAD_UNKNOWN, the purge is logged with its count, and committed images are untouched.
func TestUploadPurge(t *testing.T) {
	const age = 2 * time.Second
	srv := startServe(t, "--upload-purge-age", age.String(), "--upload-purge-interval", "1s")
	images := map[string]v1.Hash{"purge/kept:v1": pushRandom(t, srv, "purge/kept:v1", 2)}
	rc := newRegClient(srv)

	resp, err := rc.do("POST", "/v2/purge/abandoned/blobs/uploads/", nil, nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting upload: %v", err)
	}
	resp.Body.Close()
	started := time.Now()
	resp, err = rc.do("PATCH", resp.Header.Get("Location"), http.Header{"Content-Type": {"application/octet-stream"}},
		strings.NewReader("the first half of a layer"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("partial PATCH: %v", err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(srv.DataDir, "docker/registry/v2/repositories/purge/abandoned/_uploads", path.Base(u.Path))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the upload's directory: %v", err)
	}

	// distribution records the start in whole seconds, so the upload may count as up to 1s older than it is.
	deadline := started.Add(age + 10*time.Second)
	for _, err := os.Stat(dir); !os.IsNotExist(err); _, err = os.Stat(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned upload is still in %s after %s", dir, time.Since(started).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	gone := time.Since(started)
	t.Logf("abandoned upload purged %s after it started (age %s, interval 1s)", gone.Round(time.Millisecond), age)
	if gone < age-time.Second {
		t.Errorf("the upload was purged after %s, before it could be %s old", gone, age)
	}

	resp, err = rc.do("PATCH", location, http.Header{"Content-Type": {"application/octet-stream"}}, strings.NewReader(" and more"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"BLOB_UPLOAD_UNKNOWN"`) {
		t.Errorf("PATCH of the purged upload: %d %.200s, want 404 BLOB_UPLOAD_UNKNOWN", resp.StatusCode, body)
	}
	if out := srv.Output(); !strings.Contains(out, "purged abandoned uploads") || !strings.Contains(out, "purged=1") {
		t.Errorf("no log line counting the purged upload:\n%s", out)
	}
	checkPulls(t, srv, images)
}

// TestUploadPurgeValidation: a purge age without a positive interval is refused, naming the key.
func TestUploadPurgeValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, binary(t), "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "",
		"--data-dir", t.TempDir(), "--upload-purge-age", "1h", "--upload-purge-interval", "0s").CombinedOutput()
	out := string(b)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("serve with upload-purge-interval 0 started:\n%s", out)
	}
	if want := "upload-purge-interval: must be positive when upload-purge-age is set, got 0s"; !strings.Contains(out, want) {
		t.Errorf("output does not contain %q:\n%s", want, out)
	}
}

// TestUploadPurgeS3 is TestUploadPurge on object storage (MinIO): the purger walks the bucket through the s3 driver,
// removes the abandoned upload (its status GET then answers 404 BLOB_UPLOAD_UNKNOWN) and logs no error.
func TestUploadPurgeS3(t *testing.T) {
	s := newScaleOut(t)
	inst := s.serve(map[string]string{"--upload-purge-age": "2s", "--upload-purge-interval": "1s", "--log-level": "info"})
	img := s.push(inst, "purge/kept:v1", 1)

	loc, _ := expectStatus(t, "starting upload", s.do(inst, http.MethodPost, "/v2/purge/abandoned/blobs/uploads/", nil, nil), http.StatusAccepted)
	started := time.Now()
	loc, _ = expectStatus(t, "partial PATCH", s.do(inst, http.MethodPatch, loc, []byte("the first half of a layer"),
		map[string]string{"Content-Type": "application/octet-stream"}), http.StatusAccepted)
	expectStatus(t, "status of the live upload", s.do(inst, http.MethodGet, loc, nil, nil), http.StatusNoContent)
	for {
		resp := s.do(inst, http.MethodGet, loc, nil, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			if !strings.Contains(string(body), `"code":"BLOB_UPLOAD_UNKNOWN"`) {
				t.Errorf("status of the purged upload: 404 %.200s, want BLOB_UPLOAD_UNKNOWN", body)
			}
			break
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status of the upload: %d %.200s", resp.StatusCode, body)
		}
		if time.Since(started) > 15*time.Second {
			t.Fatalf("the abandoned upload is still there after %s", time.Since(started).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("abandoned upload on S3 purged %s after it started (age 2s, interval 1s)", time.Since(started).Round(time.Millisecond))
	out := inst.Output()
	if !strings.Contains(out, "purged=1") {
		t.Errorf("no log line counting the purged upload:\n%s", out)
	}
	if strings.Contains(out, "purging abandoned uploads") {
		t.Errorf("the purge on S3 logged errors:\n%s", out)
	}
	s.pullAndVerify(inst, "purge/kept:v1", img)
}
