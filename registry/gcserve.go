package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/registry-kit/registry-kit/registry/gc"
	"github.com/registry-kit/registry-kit/registry/manifestcache"
)

// GCConfig schedules garbage collection inside serve.
type GCConfig struct {
	// Interval between collections; 0 turns scheduled collection off.
	Interval time.Duration
	// Window is the grace window (gc.DefaultWindow by default).
	Window time.Duration
	// DeleteUntagged also deletes manifests untagged for longer than the window.
	DeleteUntagged bool
	// RetentionPolicy is a retention policy file (gc.LoadPolicy); empty for none.
	RetentionPolicy string
}

func (g GCConfig) validate(c Config, add func(key, format string, args ...any)) {
	if g.Interval > 0 && c.objectStorage() && len(c.Redis.Addrs) == 0 {
		add("gc-interval", "with storage s3 needs redis-addr: replicas sharing a bucket must share the write journal, "+
			"the fence and the lock through Redis")
	}
	if g.Interval < 0 {
		add("gc-interval", "must not be negative, got %s", g.Interval)
	}
	if g.Window < 0 {
		add("gc-window", "must not be negative, got %s", g.Window)
	}
	if g.RetentionPolicy != "" {
		if _, err := gc.LoadPolicy(g.RetentionPolicy); err != nil {
			add("gc-retention-policy", "%w", err)
		}
	}
}

// gcRunner is the server's side of garbage collection: the write journal and fence, the blob descriptor cache, and
// the schedule.
type gcRunner struct {
	cfg     GCConfig
	coord   gc.Coordinator
	cache   *blobCache
	backend storageBackend
	redis   redis.UniversalClient // nil without Redis
	metrics *gc.Metrics
	logger  *slog.Logger
	// swept runs after every sweep, once the blob descriptor caches forgot what it deleted: the server drops its
	// manifest cache there (and, through Redis, the other replicas' caches). Set before the server starts.
	swept func(context.Context)
}

// newGCRunner builds the coordinator: through Redis when replicas share one (they then all see the fence and the
// journal), in process otherwise. dc loses its storage.cache: the cache is ours (blobcache.go).
func newGCRunner(cfg Config, backend storageBackend, redisPassword string, dc *configuration.Configuration,
	logger *slog.Logger, reg prometheus.Registerer) *gcRunner {
	delete(dc.Storage, "cache")
	// serve's upload purger (purge.go) already removes abandoned uploads: scheduled collections leave them to it.
	g := &gcRunner{cfg: cfg.GC, backend: backend, logger: logger, metrics: gc.NewMetrics(reg)}
	if len(cfg.Redis.Addrs) > 0 {
		g.redis = redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cfg.Redis.Addrs, DB: cfg.Redis.DB,
			Password: redisPassword, DialTimeout: redisTimeout, ReadTimeout: redisTimeout, WriteTimeout: redisTimeout})
		g.cache = newBlobCache(g.redis)
		g.coord = afterForget{gc.NewRedis(g.redis), g.afterSweep}
		return g
	}
	g.cache = newBlobCache(nil)
	g.coord = gc.NewLocal(func(ctx context.Context, _ gc.Deleted) error {
		g.cache.reset()
		g.afterSweep(ctx)
		return nil
	})
	return g
}

func (g *gcRunner) afterSweep(ctx context.Context) {
	if g.swept != nil {
		g.swept(ctx)
	}
}

// afterForget is a coordinator that also runs after once the sweep's deletions were forgotten.
type afterForget struct {
	gc.Coordinator
	after func(context.Context)
}

func (a afterForget) Forget(ctx context.Context, d gc.Deleted) error {
	err := a.Coordinator.Forget(ctx, d)
	a.after(ctx)
	return err
}

func (g *gcRunner) close() {
	if g != nil && g.redis != nil {
		g.redis.Close()
	}
}

// options are the collection options of a scheduled run.
func (g *gcRunner) options() (gc.Options, error) {
	o := gc.Options{Window: g.cfg.Window, DeleteUntagged: g.cfg.DeleteUntagged, Coordinator: g.coord,
		Logger: g.logger}
	if g.cfg.RetentionPolicy != "" {
		p, err := gc.LoadPolicy(g.cfg.RetentionPolicy)
		if err != nil {
			return o, err
		}
		o.Retention = p
	}
	return o, nil
}

// start runs a collection every interval until ctx ends; the returned channel closes when it has stopped.
func (g *gcRunner) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if g == nil || g.cfg.Interval <= 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		d, err := factory.Create(ctx, g.backend.name, g.backend.params)
		if err != nil {
			g.logger.Error("garbage collection off: configuring storage", "err", err)
			return
		}
		delay := firstPurgeDelay(g.cfg.Interval)
		g.logger.Info("garbage collection on", "interval", g.cfg.Interval.String(), "window", g.cfg.Window.String(),
			"delete_untagged", g.cfg.DeleteUntagged, "first_run_in", delay.Round(time.Millisecond).String())
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			g.runOnce(ctx, d)
			delay = g.cfg.Interval
		}
	}()
	return done
}

func (g *gcRunner) runOnce(ctx context.Context, d storagedriver.StorageDriver) {
	o, err := g.options()
	if err != nil {
		g.logger.Error("garbage collection skipped", "err", err)
		return
	}
	rep, err := gc.Collect(ctx, d, o)
	if errors.Is(err, gc.ErrLocked) {
		g.logger.Debug("garbage collection skipped: another replica is collecting")
		return
	}
	g.metrics.Observe(rep, err)
}

// CollectGarbage runs one collection over cfg's storage (filesystem or S3). With cfg.Redis it coordinates with the
// servers sharing that Redis (their fence, journal and cache); without it, nothing may write to the store meanwhile
// unless the collection is a dry run.
func CollectGarbage(ctx context.Context, cfg Config, o gc.Options) (gc.Report, error) {
	if o.Logger != nil {
		level, _ := ParseLogLevel(cfg.LogLevel)
		bridgeLogrus(o.Logger, level) // distribution's own lines (each deleted blob) go to the same log
	}
	d, closeFn, err := openStorage(ctx, cfg, &o)
	if err != nil {
		return gc.Report{}, err
	}
	defer closeFn()
	return gc.Collect(ctx, d, o)
}

// Fsck checks cfg's storage for damage without changing it (gc.Fsck).
func Fsck(ctx context.Context, cfg Config, o gc.FsckOptions) (gc.FsckReport, error) {
	d, closeFn, err := openStorage(ctx, cfg, nil)
	if err != nil {
		return gc.FsckReport{}, err
	}
	defer closeFn()
	return gc.Fsck(ctx, d, o)
}

func openStorage(ctx context.Context, cfg Config, o *gc.Options) (storagedriver.StorageDriver, func(), error) {
	backend, err := newStorageBackend(cfg)
	if err != nil {
		return nil, nil, err
	}
	d, err := factory.Create(ctx, backend.name, backend.params)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring storage %s: %w", cfg.Storage, err)
	}
	closeFn := func() {}
	if o != nil && len(cfg.Redis.Addrs) > 0 {
		pw, err := cfg.redisPassword()
		if err != nil {
			return nil, nil, err
		}
		c := newRedisClient(cfg.Redis, pw)
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("connecting to redis %v: %w", cfg.Redis.Addrs, err)
		}
		// The servers sharing this Redis drop their manifest caches when this collection has swept.
		peers := manifestcache.NewPeers(c, manifestChannel(cfg), o.Logger)
		o.Coordinator = afterForget{gc.NewRedis(c), func(ctx context.Context) { peers.Publish(ctx, "") }}
		closeFn = func() { c.Close() }
	}
	return d, closeFn, nil
}

// CollectGarbage runs one collection now, coordinated with this server (and, with Redis, its replicas): o's
// Coordinator is the server's unless set.
func (s *Server) CollectGarbage(ctx context.Context, o gc.Options) (gc.Report, error) {
	d, err := factory.Create(ctx, s.gc.backend.name, s.gc.backend.params)
	if err != nil {
		return gc.Report{}, fmt.Errorf("configuring storage: %w", err)
	}
	if o.Coordinator == nil {
		o.Coordinator = s.gc.coord
	}
	rep, err := gc.Collect(ctx, d, o)
	s.gc.metrics.Observe(rep, err)
	return rep, err
}

// GCCoordinator is the coordinator this server's writes journal to and its fence is read from.
func (s *Server) GCCoordinator() gc.Coordinator { return s.gc.coord }
