package registry

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/basic"
)

// distConfig translates a validated Config into distribution's configuration. authType names the access controller
// registered for this server ("" for none); backend is the storage driver's name and parameters (see
// storageBackend); redisPassword is the Redis password read from its file or the environment.
func distConfig(cfg Config, secret, authType string, backend storageBackend, redisPassword string) *configuration.Configuration {
	dc := &configuration.Configuration{}
	dc.Version = "0.1"
	dc.Log.AccessLog.Disabled = true
	dc.Log.Level = configuration.Loglevel(cfg.LogLevel)
	cache := "inmemory"
	if len(cfg.Redis.Addrs) > 0 {
		cache = "redis"
		dc.Redis.Options.Addrs = cfg.Redis.Addrs
		dc.Redis.Options.DB = cfg.Redis.DB
		dc.Redis.Options.Password = redisPassword
		dc.Redis.Options.DialTimeout = redisTimeout
		dc.Redis.Options.ReadTimeout = redisTimeout
		dc.Redis.Options.WriteTimeout = redisTimeout
	}
	dc.Storage = configuration.Storage{
		backend.name: backend.params,
		"cache":      configuration.Parameters{"blobdescriptor": cache},
		"delete":     configuration.Parameters{"enabled": cfg.DeleteEnabled},
		// Without redirects, blob bytes flow through the registry; with them clients fetch presigned URLs.
		"redirect": configuration.Parameters{"disable": !cfg.BlobRedirect},
		// distribution's purger first runs after a random 0-59 minutes whatever the interval; ours (purge.go)
		// runs shortly after start, then every UploadPurgeInterval.
		"maintenance": configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": false},
		},
	}
	if authType != "" {
		dc.Auth = configuration.Auth{authType: configuration.Parameters{}}
	}
	dc.HTTP.Addr = cfg.Addr
	dc.HTTP.Secret = secret
	dc.HTTP.Headers = map[string][]string{"X-Content-Type-Options": {"nosniff"}}
	dc.HTTP.Debug.Prometheus.Enabled = cfg.MetricsAddr != ""
	// Layers with foreign URLs (Windows base layers, the OCI conformance suite) must be accepted.
	dc.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	// distribution's YAML parser defaults these to 1000; built in code they are 0, which made /v2/_catalog always
	// empty and any n refused. rejectMalformed clamps larger catalog n to the same number.
	dc.Catalog.MaxEntries = maxCatalogEntries
	dc.Tags.MaxTags = maxCatalogEntries
	return dc
}

// storageBackend is a storage driver's registered name and its parameters.
type storageBackend struct {
	name   string
	params configuration.Parameters
}

// newStorageBackend names the driver for cfg.Storage and reads the S3 credentials from their files.
func newStorageBackend(cfg Config) (storageBackend, error) {
	if !cfg.objectStorage() {
		return storageBackend{name: StorageFilesystem, params: configuration.Parameters{"rootdirectory": cfg.DataDir}}, nil
	}
	p, err := cfg.s3Params()
	if err != nil {
		return storageBackend{}, err
	}
	return storageBackend{name: s3DriverName, params: p}, nil
}

// newAccessController builds the access controller both distribution and the blob fast path use. It is the one
// place that names the implementation.
func newAccessController(cfg Config, logger *slog.Logger) (auth.AccessController, error) {
	var reg prometheus.Registerer
	if cfg.MetricsAddr != "" {
		reg = prometheus.DefaultRegisterer
	}
	c, err := basic.New(basic.Options{
		Realm:      cfg.Realm,
		Path:       cfg.HtpasswdPath(),
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err // not a typed nil in the interface: closeAll would call Close on it
	}
	return withServiceAccountTokens(cfg, c, logger, reg)
}

// shareAccessController registers ac under a fresh name so distribution's App uses this very instance.
func shareAccessController(ac auth.AccessController) (string, error) {
	name := fmt.Sprintf("registry-kit-embedded-%d", sharedSeq.Add(1))
	if err := auth.Register(name, func(map[string]any) (auth.AccessController, error) { return ac, nil }); err != nil {
		return "", fmt.Errorf("registering access controller: %w", err)
	}
	return name, nil
}

var sharedSeq atomic.Int64

// distribution registers its HTTP metrics in the default Prometheus registry with MustRegister each time an App is
// created, which panics the second time in a process (a restart in tests, a re-created server). While NewApp runs,
// the default registerer is swapped for one that replaces an already registered collector.
var newAppMu sync.Mutex

type replacingRegisterer struct{ prometheus.Registerer }

func (r replacingRegisterer) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
		r.Registerer.Unregister(are.ExistingCollector)
		return r.Registerer.Register(c)
	}
	return err
}

func (r replacingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func withReplacingRegisterer(f func()) {
	newAppMu.Lock()
	defer newAppMu.Unlock()
	orig := prometheus.DefaultRegisterer
	prometheus.DefaultRegisterer = replacingRegisterer{orig}
	defer func() { prometheus.DefaultRegisterer = orig }()
	f()
}
