package registry

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFirstPurgeDelay(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		limit    time.Duration
	}{
		{name: "short interval bounds the delay", interval: 200 * time.Millisecond, limit: 200 * time.Millisecond},
		{name: "default interval waits under a minute", interval: DefaultUploadPurgeInterval, limit: time.Minute},
		{name: "zero interval", interval: 0, limit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 1000 {
				if d := firstPurgeDelay(tt.interval); d < 0 || d >= tt.limit {
					t.Fatalf("firstPurgeDelay(%s) = %s, want in [0, %s)", tt.interval, d, tt.limit)
				}
			}
		})
	}
}

// startUpload POSTs a new upload to repo, PATCHes a few bytes into it and returns its location and storage directory.
func startUpload(t *testing.T, ts *testServer, dataDir, repo string) (location, dir string) {
	t.Helper()
	resp := authDo(t, ts, http.MethodPost, ts.url+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload = %d", resp.StatusCode)
	}
	location = resp.Header.Get("Location")
	if resp = authDo(t, ts, http.MethodPatch, location, strings.NewReader("half a layer")); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH upload = %d", resp.StatusCode)
	}
	location = resp.Header.Get("Location")
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(dataDir, "docker/registry/v2/repositories", repo, "_uploads", path.Base(u.Path))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("upload directory: %v", err)
	}
	return location, dir
}

// authDo sends one authenticated request; the response's body is already read from the connection and closed.
func authDo(t *testing.T, ts *testServer, method, u string, body io.Reader) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	req.SetBasicAuth(AdminUser, ts.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// purgeRuns counts the purges logged so far, with (warn) or without (info) errors.
func purgeRuns(logs string) int {
	return strings.Count(logs, `msg="purged abandoned uploads"`) + strings.Count(logs, `msg="purging abandoned uploads"`)
}

// TestUploadPurging leaves an upload unfinished and checks the purger removes it once it is older than the age,
// while a younger upload survives several purges and can still be written to.
func TestUploadPurging(t *testing.T) {
	// distribution stores an upload's start in RFC 3339 with whole seconds, so an upload counts as up to a second
	// older than it is: it is purged between age-1s and age+interval after its POST.
	const age, startedAtPrecision = 3 * time.Second, time.Second
	cfg := testConfig(t)
	cfg.UploadPurgeAge, cfg.UploadPurgeInterval = age, 100*time.Millisecond
	ts := startServer(t, cfg)

	started := time.Now()
	oldLocation, oldDir := startUpload(t, ts, cfg.DataDir, "purge/abandoned")
	for {
		if _, err := os.Stat(oldDir); os.IsNotExist(err) {
			break
		}
		if time.Since(started) > age+10*time.Second {
			t.Fatalf("the abandoned upload is still there after %s\n%s", time.Since(started), ts.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	gone := time.Since(started)
	t.Logf("abandoned upload purged after %s (age %s)", gone.Round(time.Millisecond), age)
	if gone < age-startedAtPrecision {
		t.Errorf("the upload was purged after %s, before it was %s old", gone, age-startedAtPrecision)
	}
	if !strings.Contains(ts.logs.String(), `msg="purged abandoned uploads" purged=1 older_than=3s`) {
		t.Errorf("no log line counting the purged upload:\n%s", ts.logs.String())
	}

	// A young upload must survive purges while it is younger than the age. On a machine too loaded to see three
	// purges and look at the upload within that time, the attempt proves nothing and is made again.
	for attempt := 1; ; attempt++ {
		youngLocation, youngDir := startUpload(t, ts, cfg.DataDir, fmt.Sprintf("purge/young%d", attempt))
		youngStarted := time.Now()
		for runs := purgeRuns(ts.logs.String()); purgeRuns(ts.logs.String()) < runs+3; time.Sleep(20 * time.Millisecond) {
			if time.Since(youngStarted) > 10*time.Second {
				t.Fatal("the purger stopped running")
			}
		}
		_, statErr := os.Stat(youngDir)
		patch := authDo(t, ts, http.MethodPatch, youngLocation, strings.NewReader(" more"))
		if elapsed := time.Since(youngStarted); elapsed >= age-startedAtPrecision {
			if attempt == 5 {
				t.Fatalf("the machine is too slow for this test: three purges and two looks took %s", elapsed)
			}
			t.Logf("attempt %d: three purges and two looks took %s, trying again", attempt, elapsed)
			continue
		}
		if statErr != nil {
			t.Errorf("an upload younger than the age was purged: %v", statErr)
		}
		if patch.StatusCode != http.StatusAccepted {
			t.Errorf("PATCH of the young upload = %d, want 202", patch.StatusCode)
		}
		break
	}

	resp := authDo(t, ts, http.MethodPatch, oldLocation, strings.NewReader(" more"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"BLOB_UPLOAD_UNKNOWN"`) {
		t.Errorf("PATCH of the purged upload = %d %s, want 404 BLOB_UPLOAD_UNKNOWN", resp.StatusCode, body)
	}
}

func TestUploadPurgingOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.UploadPurgeAge, cfg.UploadPurgeInterval = 0, 0
	ts := startServer(t, cfg)
	if ts.purger != nil {
		t.Fatal("upload-purge-age 0 started a purger")
	}
	if strings.Contains(ts.logs.String(), "upload purging on") {
		t.Errorf("purging announced although off:\n%s", ts.logs.String())
	}
}
