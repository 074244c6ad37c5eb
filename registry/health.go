package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

const (
	// readinessCacheTTL is how long one round of checks answers /readyz, so probes cannot load the storage.
	readinessCacheTTL = 2 * time.Second
	// readinessTimeout bounds one round of checks against object storage and Redis.
	readinessTimeout = 3 * time.Second
)

// readinessCheck is one dependency /readyz needs: storage, the shared cache.
type readinessCheck func(ctx context.Context) error

// readiness runs its checks at most once per readinessCacheTTL and remembers the first failure. It logs each change
// of the outcome (the failure's text names endpoints, buckets and storage paths, so only the log and the metrics
// address show it, never the unauthenticated registry address).
type readiness struct {
	checks []readinessCheck
	logger *slog.Logger

	mu      sync.Mutex
	checked time.Time
	err     error
	now     func() time.Time
}

func newReadiness(logger *slog.Logger, checks ...readinessCheck) *readiness {
	return &readiness{checks: checks, logger: logger, now: time.Now}
}

func (p *readiness) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); now.Sub(p.checked) >= readinessCacheTTL || p.checked.IsZero() {
		ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
		prev, first := p.err, p.checked.IsZero()
		p.err = nil
		for _, c := range p.checks {
			if p.err = c(ctx); p.err != nil {
				break
			}
		}
		cancel()
		p.checked = now
		p.logChange(prev, first)
	}
	return p.err
}

func (p *readiness) logChange(prev error, first bool) {
	switch {
	case p.err != nil && (prev == nil || prev.Error() != p.err.Error()):
		p.logger.Warn("not ready", "err", p.err)
	case p.err == nil && prev != nil:
		p.logger.Info("ready again")
	case p.err == nil && first:
		p.logger.Debug("ready")
	}
}

// filesystemCheck checks the storage root accepts a small write, read back and delete. The file name is unique
// per server, so replicas sharing a volume do not race.
func filesystemCheck(dir string) readinessCheck {
	name := ".registry-kit-readyz-" + rand.Text()[:10]
	return func(context.Context) error {
		path := filepath.Join(dir, name)
		want := []byte(name)
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
}

// objectStorageCheck stats the storage root: one cheap list request that needs the endpoint, the bucket and valid
// credentials. An empty bucket (nothing under the root yet) is ready.
func objectStorageCheck(d storagedriver.StorageDriver) readinessCheck {
	return func(ctx context.Context) error {
		_, err := d.Stat(ctx, "/")
		if errors.As(err, new(storagedriver.PathNotFoundError)) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("object storage: %w", err)
		}
		return nil
	}
}

// healthRoutes serves /healthz (the process answers) and /readyz (storage and cache usable) before anything else.
// Both answer anyone, so /readyz says only "ok" or "not ready": why is in the log and on the metrics address
// (readinessDetails).
func healthRoutes(ready *readiness, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			writeProbe(w, http.StatusOK, "ok")
		case "/readyz":
			if err := ready.check(); err != nil {
				writeProbe(w, http.StatusServiceUnavailable, "not ready")
				return
			}
			writeProbe(w, http.StatusOK, "ok")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// readinessDetails is /readyz on the metrics address, for operators: the same check, with the failure's text.
func readinessDetails(ready *readiness) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := ready.check(); err != nil {
			writeProbe(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeProbe(w, http.StatusOK, "ok")
	})
}

func writeProbe(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	fmt.Fprintln(w, body)
}
