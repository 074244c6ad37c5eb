package registry

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// readinessCacheTTL is how long one storage check answers /readyz, so probes cannot load the disk.
const readinessCacheTTL = 2 * time.Second

// storageProbe checks the storage root accepts a small write, read back and delete.
type storageProbe struct {
	dir  string
	name string // unique per server, so replicas sharing a volume do not race

	mu      sync.Mutex
	checked time.Time
	err     error
	now     func() time.Time
}

func newStorageProbe(dir string) *storageProbe {
	return &storageProbe{dir: dir, name: ".registry-kit-readyz-" + rand.Text()[:10], now: time.Now}
}

func (p *storageProbe) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); now.Sub(p.checked) >= readinessCacheTTL || p.checked.IsZero() {
		p.err = p.probe()
		p.checked = now
	}
	return p.err
}

func (p *storageProbe) probe() error {
	path := filepath.Join(p.dir, p.name)
	want := []byte(p.name)
	if err := os.WriteFile(path, want, 0o600); err != nil {
		return fmt.Errorf("writing to storage: %w", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading from storage: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("reading from storage: %s returned different bytes than written", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("deleting from storage: %w", err)
	}
	return nil
}

// healthRoutes serves /healthz (the process answers) and /readyz (storage usable) before anything else.
func healthRoutes(probe *storageProbe, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			writeProbe(w, http.StatusOK, "ok")
		case "/readyz":
			if err := probe.check(); err != nil {
				writeProbe(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
			writeProbe(w, http.StatusOK, "ok")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeProbe(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}
