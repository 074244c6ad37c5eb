package basic

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// testCost keeps bcrypt fast in unit tests; the benchmark uses the default cost.
const testCost = 4

// writeUsers writes an htpasswd file with the given user -> password pairs.
func writeUsers(t *testing.T, path string, users map[string]string) {
	t.Helper()
	f := htpasswd.New()
	for u, p := range users {
		if err := f.Set(u, p, testCost); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// newTestController starts a controller on path with a bcrypt call counter; opts fields override defaults.
func newTestController(t *testing.T, opts Options) (*Controller, *atomic.Int64, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	// Tests that poll for a change fail many times on purpose: unless a test is about throttling, don't throttle.
	generous := Limit{Burst: 1 << 20, Every: time.Millisecond}
	for _, l := range []*Limit{&opts.AddrLimit, &opts.PairLimit, &opts.GlobalLimit} {
		if *l == (Limit{}) {
			*l = generous
		}
	}
	if opts.Realm == "" {
		opts.Realm = "test-realm"
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	calls := &atomic.Int64{}
	verify := c.verify
	c.verify = func(f *htpasswd.File, user, password string) bool {
		calls.Add(1)
		return verify(f, user, password)
	}
	return c, calls, reg
}

// request builds a request from addr with Basic credentials (none if user is "").
func request(addr, user, password string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.RemoteAddr = addr + ":40000"
	if user != "" {
		r.SetBasicAuth(user, password)
	}
	return r
}

// authorized reports whether c grants the request, failing the test on a non-challenge error.
func authorized(t *testing.T, c *Controller, addr, user, password string) bool {
	t.Helper()
	g, err := c.Authorized(request(addr, user, password))
	if err != nil {
		if _, ok := err.(auth.Challenge); !ok {
			t.Fatalf("Authorized returned a non-challenge error: %v", err)
		}
		return false
	}
	if g.User.Name != user {
		t.Fatalf("grant for user %q, want %q", g.User.Name, user)
	}
	return true
}

// counter reads one labelled counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	return metricOf(t, reg, name, "result", result).GetCounter().GetValue()
}

// gauge reads one gauge from reg: unlabelled when line is "", else the series with that line label.
func gauge(t *testing.T, reg *prometheus.Registry, name, line string) float64 {
	t.Helper()
	return metricOf(t, reg, name, "line", line).GetGauge().GetValue()
}

// metricOf is the series of metric name whose label key is value (the unlabelled series when value is ""), or
// nil (whose getters read 0) when there is none.
func metricOf(t *testing.T, reg *prometheus.Registry, name, key, value string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if value == "" && len(m.GetLabel()) == 0 {
				return m
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == key && l.GetValue() == value {
					return m
				}
			}
		}
	}
	return nil
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tempPath(t *testing.T) string { return filepath.Join(t.TempDir(), "htpasswd") }

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeClock is the controller's clock in tests that wait for time rather than for an event.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// mustCache is an empty credential cache with the default sizes.
func mustCache(t *testing.T) *credCache {
	t.Helper()
	c, err := newCredCache(10000, 5*time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
