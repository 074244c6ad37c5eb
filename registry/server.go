package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/registry/manifestcache"
	"github.com/registry-kit/registry-kit/registry/oci"
)

// Option customises a Server.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	notices io.Writer
}

// WithLogger sets the logger; by default a Server logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithNotices sets where one-time notices for a person go (the generated admin password's location and the docker
// login line). They are not log lines; the CLI passes stderr. By default they are discarded.
func WithNotices(w io.Writer) Option { return func(o *options) { o.notices = w } }

// Server is a running registry: distribution's App behind health, metrics, auth and shutdown handling.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	app     *handlers.App
	ac      auth.AccessController
	policy  *access.Controller // the access policy wrapping ac, or nil without a policy file
	handler http.Handler
	// stopTracing flushes and stops trace export; nil when tracing is off.
	stopTracing func(context.Context) error
	redis       io.Closer     // the readiness client of the Redis cache, or nil
	purger      *uploadPurger // nil when upload purging is off
	oci         *oci.Handler  // referrers API, sha512 addresses, tag parameters (ociext.go)
	gc          *gcRunner     // write journal and fence, blob descriptor cache, GC schedule (gcserve.go)

	manifests *manifestcache.Handler // nil when the manifest cache is off (manifestcaching.go)
	stopPeers func()                 // stops its invalidation subscription, or nil
	closers   []io.Closer            // its Redis client

	ln, metricsLn net.Listener
	srv, metrics  *http.Server

	ready   *readiness   // /readyz's checks, also served with details on the metrics address
	limiter *connLimiter // nil without auth or max-unauthenticated-conns
}

// New validates cfg, creates the data directory and, when needed, the admin user, builds the registry and opens its
// listeners. Call Run to serve; the listeners are closed when Run returns.
func New(cfg Config, opts ...Option) (_ *Server, err error) {
	o := options{logger: discardLogger(), notices: io.Discard}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := ParseLogLevel(cfg.LogLevel)
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs // the storage driver and the fast path need one unambiguous root
	}
	s := &Server{cfg: cfg, logger: o.logger}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	// Listen first: a port in use must fail before the admin user is created, or its notice would be lost.
	if err := s.openListeners(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	secret := cfg.HTTPSecret
	if cfg.HTTPSecretFile != "" {
		if secret, err = readSecretFile(cfg.HTTPSecretFile); err != nil {
			return nil, fmt.Errorf("reading http-secret-file: %w", err)
		}
	}
	if secret == "" {
		secret = rand.Text() + rand.Text()
		o.logger.Info("no http secret given: generated one for this process; replicas behind one load balancer need the same --http-secret-file")
	}
	var passwordFile string
	authType := ""
	if !cfg.NoAuth {
		if passwordFile, err = bootstrapAdmin(cfg); err != nil {
			return nil, err
		}
		if s.ac, err = newAccessController(cfg, o.logger); err != nil {
			return nil, fmt.Errorf("configuring authentication: %w", err)
		}
		if cfg.MaxUnauthenticatedConns > 0 {
			s.limiter = newConnLimiter(cfg.MaxUnauthenticatedConns, o.logger, metricsRegisterer(cfg))
			s.ac = s.limiter.watch(s.ac)
		}
		if s.ac, s.policy, err = withAccessPolicy(cfg, s.ac, o.logger, metricsRegisterer(cfg)); err != nil {
			return nil, err
		}
		if authType, err = shareAccessController(onceAuthorized{s.ac}); err != nil {
			return nil, err
		}
	}

	bridgeLogrus(o.logger, level)
	backend, err := newStorageBackend(cfg)
	if err != nil {
		return nil, err
	}
	ready, redisPassword, err := s.dependencies(cfg, backend)
	if err != nil {
		return nil, err
	}
	s.ready = ready
	if s.purger, err = newUploadPurger(cfg, backend, o.logger); err != nil {
		return nil, err
	}
	dc := distConfig(cfg, secret, authType, backend, redisPassword)
	s.gc = newGCRunner(cfg, backend, redisPassword, dc, o.logger, metricsRegisterer(cfg))
	if err := buildApp(s, dc); err != nil {
		return nil, err
	}
	var reg prometheus.Registerer
	if cfg.MetricsAddr != "" {
		reg = prometheus.DefaultRegisterer
	}
	h := insufficientStorage(gcHooks(s.gc.coord, s.gc.cache, s.app))
	if !cfg.objectStorage() {
		// The fast path reads the filesystem driver's files; object storage goes through distribution.
		h = newBlobFastPath(cfg.DataDir, s.ac, reg, h)
	}
	if h, err = s.withOCI(backend, h); err != nil {
		return nil, err
	}
	h = s.withManifestCache(h, reg, redisPassword)
	s.gc.swept = s.StorageChanged
	// Outermost of the API handlers: the policy decides (403 DENIED) before the referrers API, the fast path or
	// distribution sees the request, and they reuse its grant.
	if s.policy != nil {
		h = newAccessEnforcer(s.policy, o.logger, reg, h)
	}
	h = rejectMalformed(h)
	h = healthRoutes(ready, h)
	if level <= slog.LevelDebug {
		h = accessLog(o.logger, h)
	}
	if cfg.Tracing {
		if h, s.stopTracing, err = startTracing(context.Background(), h); err != nil {
			return nil, err
		}
	}
	s.handler = recoverPanics(o.logger, limitBodyIdle(cfg.BodyIdleTimeout, h))
	s.newHTTPServers()
	s.announce(o.notices, passwordFile)
	return s, nil
}

// metricsRegisterer is where the server's own metrics go: the default registry when /metrics is served.
func metricsRegisterer(cfg Config) prometheus.Registerer {
	if cfg.MetricsAddr == "" {
		return nil
	}
	return prometheus.DefaultRegisterer
}

// dependencies builds the readiness checks for the storage and the Redis cache, and checks Redis's eviction
// policy. It returns the Redis password for distribution's client.
func (s *Server) dependencies(cfg Config, backend storageBackend) (*readiness, string, error) {
	var checks []readinessCheck
	if cfg.objectStorage() {
		d, err := factory.Create(context.Background(), backend.name, backend.params)
		if err != nil {
			return nil, "", fmt.Errorf("configuring storage s3: %w", err)
		}
		checks = append(checks, objectStorageCheck(d))
	} else {
		checks = append(checks, filesystemCheck(cfg.DataDir))
	}
	if len(cfg.Redis.Addrs) == 0 {
		if cfg.objectStorage() {
			s.logger.Warn("object storage without redis-addr: each replica caches blob descriptors in memory, so a blob " +
				"deleted through one replica can still be reported present by another; give the replicas a shared Redis")
		}
		return newReadiness(s.logger, checks...), "", nil
	}
	pw, err := cfg.redisPassword()
	if err != nil {
		return nil, "", err
	}
	client := newRedisClient(cfg.Redis, pw)
	s.redis = client
	checkRedisEvictionPolicy(context.Background(), client, s.logger)
	return newReadiness(s.logger, append(checks, redisCheck(client))...), pw, nil
}

// buildApp creates distribution's App, turning a panic on configuration it rejects into an error.
func buildApp(s *Server, dc *configuration.Configuration) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("configuring distribution: %v", v)
		}
	}()
	withReplacingRegisterer(func() {
		s.app = handlers.NewApp(context.Background(), dc)
	})
	return nil
}

func (s *Server) openListeners() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on addr %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	if s.cfg.MetricsAddr != "" {
		if s.metricsLn, err = net.Listen("tcp", s.cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listening on metrics-addr %s: %w", s.cfg.MetricsAddr, err)
		}
	}
	return nil
}

func (s *Server) newHTTPServers() {
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	if s.limiter != nil {
		s.srv.ConnContext, s.srv.ConnState = s.limiter.connContext, s.limiter.connState
	}
	if s.cfg.TLSCert != "" {
		s.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		mux.Handle("/readyz", readinessDetails(s.ready))
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	}
}

// closeAll releases what a failed New had opened.
func (s *Server) closeAll() {
	s.stopManifestCache()
	if s.ln != nil {
		s.ln.Close()
	}
	if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.app != nil {
		s.app.Shutdown()
	}
	if c, ok := s.ac.(io.Closer); ok {
		c.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	s.gc.close()
}

// Addr is the address the registry listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// MetricsAddr is the address /metrics is served on, or nil when metrics are off.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Run serves until ctx is cancelled, then stops accepting connections and lets in-flight requests finish within
// ShutdownGrace. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if err := releaseStartupPages(); err != nil {
		s.logger.Debug("could not release the start-up pages of the binary", "err", err)
	}
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	serve := func(srv *http.Server, ln net.Listener, tlsOn bool) {
		defer wg.Done()
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}
	wg.Add(1)
	go serve(s.srv, s.ln, s.cfg.TLSCert != "")
	if s.metrics != nil {
		wg.Add(1)
		go serve(s.metrics, s.metricsLn, false)
	}
	s.logger.Info("registry serving", "addr", s.ln.Addr().String(), "tls", s.cfg.TLSCert != "",
		"metrics", metricsURL(s.MetricsAddr()), "storage", s.storageDesc(), "auth", !s.cfg.NoAuth,
		"cache", s.cacheDesc())

	purgeCtx, stopPurging := context.WithCancel(context.Background())
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		if s.purger != nil {
			s.purger.run(purgeCtx)
		}
	}()
	backfilled := s.startBackfill(purgeCtx)
	collected := s.gc.start(purgeCtx)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.logger.Info("shutting down", "grace", s.cfg.ShutdownGrace.String())
	stopPurging()
	shutdownErr := s.shutdown()
	wg.Wait()
	<-purged
	<-backfilled
	<-collected
	if serveErr != nil {
		return fmt.Errorf("serving: %w", serveErr)
	}
	return shutdownErr
}

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	var errs []error
	if s.metrics != nil {
		go s.metrics.Shutdown(ctx)
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		errs = append(errs, fmt.Errorf("in-flight requests did not finish within shutdown-grace %s: %w", s.cfg.ShutdownGrace, err))
	}
	if s.metrics != nil {
		s.metrics.Close()
	}
	if err := s.app.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("stopping registry: %w", err))
	}
	if s.stopTracing != nil {
		if err := s.stopTracing(ctx); err != nil { // flushes the spans not exported yet
			errs = append(errs, fmt.Errorf("flushing traces: %w", err))
		}
	}
	s.stopManifestCache()
	if c, ok := s.ac.(io.Closer); ok {
		c.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	s.gc.close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	s.logger.Info("shut down cleanly")
	return nil
}

func (s *Server) storageDesc() string {
	if s.cfg.objectStorage() {
		return "s3://" + s.cfg.S3.Bucket + s.cfg.S3.RootDirectory
	}
	return s.cfg.DataDir
}

func (s *Server) cacheDesc() string {
	if len(s.cfg.Redis.Addrs) > 0 {
		return "redis " + strings.Join(s.cfg.Redis.Addrs, ",")
	}
	return "inmemory"
}

func metricsURL(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return "http://" + a.String() + "/metrics"
}
