package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// maxFirstPurgeDelay bounds the wait before the first purge. distribution's own purger waits a random 0-59 minutes
// whatever the interval, so it is turned off (see distConfig) and this one runs instead.
const maxFirstPurgeDelay = time.Minute

// uploadPurger removes unfinished uploads whose start lies more than age in the past: once shortly after start, then
// every interval.
type uploadPurger struct {
	driver        storagedriver.StorageDriver
	age, interval time.Duration
	logger        *slog.Logger
	// now and after are the clock (time.Now and time.After; tests replace them before Run).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// newUploadPurger returns nil when purging is off (UploadPurgeAge 0).
func newUploadPurger(cfg Config, backend storageBackend, logger *slog.Logger) (*uploadPurger, error) {
	if cfg.UploadPurgeAge <= 0 {
		return nil, nil
	}
	d, err := factory.Create(context.Background(), backend.name, backend.params)
	if err != nil {
		return nil, fmt.Errorf("configuring storage for upload purging: %w", err)
	}
	return &uploadPurger{driver: d, age: cfg.UploadPurgeAge, interval: cfg.UploadPurgeInterval, logger: logger,
		now: time.Now, after: time.After}, nil
}

// firstPurgeDelay is a random delay below min(interval, maxFirstPurgeDelay), so replicas started together do not
// all walk the storage at the same moment.
func firstPurgeDelay(interval time.Duration) time.Duration {
	limit := min(interval, maxFirstPurgeDelay)
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// run purges until ctx is cancelled. A purge in progress is finished, not interrupted.
func (p *uploadPurger) run(ctx context.Context) {
	delay := firstPurgeDelay(p.interval)
	p.logger.Info("upload purging on", "age", p.age.String(), "interval", p.interval.String(),
		"first_run_in", delay.Round(time.Millisecond).String())
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.after(delay):
		}
		p.purgeOnce(ctx)
		delay = p.interval
	}
}

// repositoriesRoot is where distribution keeps repositories (and their _uploads) in the storage driver.
const repositoriesRoot = "/docker/registry/v2/repositories"

// purgeOnce removes the uploads older than age and logs how many it removed.
func (p *uploadPurger) purgeOnce(ctx context.Context) int {
	start := p.now()
	// Before the first push there is no repositories directory: PurgeUploads would report its absence as an error.
	if _, err := p.driver.Stat(ctx, repositoriesRoot); errors.As(err, new(storagedriver.PathNotFoundError)) {
		p.logger.Debug("no repositories yet: no uploads to purge")
		return 0
	}
	deleted, errs := storage.PurgeUploads(ctx, p.driver, start.Add(-p.age), true)
	attrs := []any{"purged", len(deleted), "older_than", p.age.String(),
		"took", p.now().Sub(start).Round(time.Millisecond).String()}
	if len(errs) > 0 {
		p.logger.Warn("purging abandoned uploads", append(attrs, "errors", len(errs), "err", errors.Join(errs...))...)
	} else {
		p.logger.Info("purged abandoned uploads", attrs...)
	}
	return len(deleted)
}
