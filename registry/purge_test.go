package registry

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// purgeClock drives an uploadPurger: its timer fires when the test says, and its now is the real time plus an
// offset the test sets (distribution stamps uploads with the real time), so ages are reached without waiting.
type purgeClock struct {
	ticks  chan time.Time
	offset atomic.Int64
	mu     sync.Mutex
	waits  []time.Duration // the delays the purger asked for, in order
}

func installPurgeClock(c *purgeClock) func(*Server) {
	c.ticks = make(chan time.Time)
	return func(s *Server) {
		s.purger.now = func() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }
		s.purger.after = func(d time.Duration) <-chan time.Time {
			c.mu.Lock()
			c.waits = append(c.waits, d)
			c.mu.Unlock()
			return c.ticks
		}
	}
}

// purgeAt makes the purger run once as if the time were offset ahead, and waits until that purge has been logged.
func (c *purgeClock) purgeAt(t *testing.T, ts *testServer, offset time.Duration) {
	t.Helper()
	c.offset.Store(int64(offset))
	runs := purgeRuns(ts.logs.String())
	select {
	case c.ticks <- time.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("the purger is not waiting for its timer")
	}
	for deadline := time.Now().Add(10 * time.Second); purgeRuns(ts.logs.String()) == runs; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the purge did not finish\n%s", ts.logs.String())
		}
	}
}

// TestUploadPurging leaves uploads unfinished and moves the purger's clock: an upload is removed once it is older
// than the age, a younger one survives and can still be written to, and the purger runs first after a delay below
// the interval, then every interval.
func TestUploadPurging(t *testing.T) {
	// distribution stores an upload's start in RFC 3339 with whole seconds, so an upload counts as up to a second
	// older than it is.
	const age, startedAtPrecision = time.Hour, time.Second
	cfg := testConfig(t)
	cfg.UploadPurgeAge, cfg.UploadPurgeInterval = age, 10*time.Minute
	clk := &purgeClock{}
	ts := startServer(t, cfg, installPurgeClock(clk))

	oldLocation, oldDir := startUpload(t, ts, cfg.DataDir, "purge/abandoned")
	clk.purgeAt(t, ts, age-startedAtPrecision-time.Second)
	if _, err := os.Stat(oldDir); err != nil {
		t.Fatalf("an upload younger than the age was purged: %v", err)
	}
	clk.purgeAt(t, ts, age+time.Second)
	if _, err := os.Stat(oldDir); !os.IsNotExist(err) {
		t.Fatalf("the abandoned upload is still there once older than the age: %v\n%s", err, ts.logs.String())
	}
	if !strings.Contains(ts.logs.String(), `msg="purged abandoned uploads" purged=1 older_than=1h0m0s`) {
		t.Errorf("no log line counting the purged upload:\n%s", ts.logs.String())
	}

	// A young upload survives purges while it is younger than the age, and stays writable.
	youngLocation, youngDir := startUpload(t, ts, cfg.DataDir, "purge/young")
	for _, offset := range []time.Duration{0, age / 2, age - startedAtPrecision - time.Second} {
		clk.purgeAt(t, ts, offset)
		if _, err := os.Stat(youngDir); err != nil {
			t.Fatalf("an upload %s younger than the age was purged: %v", age-offset, err)
		}
	}
	clk.offset.Store(0)
	if patch := authDo(t, ts, http.MethodPatch, youngLocation, strings.NewReader(" more")); patch.StatusCode != http.StatusAccepted {
		t.Errorf("PATCH of the young upload = %d, want 202", patch.StatusCode)
	}

	resp := authDo(t, ts, http.MethodPatch, oldLocation, strings.NewReader(" more"))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"BLOB_UPLOAD_UNKNOWN"`) {
		t.Errorf("PATCH of the purged upload = %d %s, want 404 BLOB_UPLOAD_UNKNOWN", resp.StatusCode, body)
	}

	clk.mu.Lock()
	waits := slices.Clone(clk.waits)
	clk.mu.Unlock()
	if len(waits) < 2 || waits[0] < 0 || waits[0] >= min(cfg.UploadPurgeInterval, maxFirstPurgeDelay) {
		t.Fatalf("purger waits %v: want a first delay in [0, %s), then the interval", waits, min(cfg.UploadPurgeInterval, maxFirstPurgeDelay))
	}
	for i, w := range waits[1:] {
		if w != cfg.UploadPurgeInterval {
			t.Errorf("wait %d after a purge = %s, want the interval %s", i+1, w, cfg.UploadPurgeInterval)
		}
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
