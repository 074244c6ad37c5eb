package registry

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/auth/satoken"
	"github.com/registry-kit/registry-kit/registry/gc"
	"github.com/registry-kit/registry-kit/registry/storageconfig"
)

// Defaults for the zero configuration.
const (
	DefaultAddr          = ":5000"
	DefaultMetricsAddr   = ":5001"
	DefaultDataDir       = "/var/lib/registry"
	DefaultRealm         = "registry-kit"
	DefaultShutdownGrace = 25 * time.Second
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"

	// DefaultUploadPurgeAge and DefaultUploadPurgeInterval control how abandoned uploads are removed.
	DefaultUploadPurgeAge      = 168 * time.Hour
	DefaultUploadPurgeInterval = 24 * time.Hour

	// AdminUser is the user created when the htpasswd file does not exist.
	AdminUser = "admin"
	// AdminPasswordFile is the name, inside the data directory, of the file holding the generated admin password.
	AdminPasswordFile = "admin-password"

	redacted = "REDACTED"
)

// Config is the typed configuration of a registry server. Its error messages name keys as the CLI spells its flags.
type Config struct {
	// Addr is the HOST:PORT the registry API, /healthz and /readyz listen on.
	Addr string
	// DataDir is the filesystem storage root; the admin password file is written here too.
	DataDir string
	// Htpasswd is the htpasswd file; empty means DataDir/htpasswd.
	Htpasswd string
	// MetricsAddr is the HOST:PORT serving /metrics; empty disables metrics.
	MetricsAddr string
	// NoAuth turns authentication off: anyone who reaches Addr may push and pull.
	NoAuth bool
	// AccessPolicy is the access policy file (auth/access): who may pull, push and delete which repositories. Empty
	// means every authenticated user may do everything.
	AccessPolicy string
	// Tracing exports OpenTelemetry traces as the OTEL_* environment variables say (OTLP by default).
	Tracing bool
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert string
	TLSKey  string
	// LogLevel is one of debug, info, warn, error. At debug every request is logged.
	LogLevel string
	// LogFormat is text or json; the CLI uses it to build the logger passed with WithLogger.
	LogFormat string
	// HTTPSecret signs upload state; replicas behind one load balancer must share it. Empty means random per process
	// unless HTTPSecretFile is set.
	HTTPSecret string
	// HTTPSecretFile holds the HTTP secret (surrounding whitespace is trimmed).
	HTTPSecretFile string
	// DeleteEnabled allows DELETE of manifests and blobs.
	DeleteEnabled bool
	// Realm is the Basic authentication realm.
	Realm string
	// ShutdownGrace bounds how long in-flight requests may run after shutdown begins.
	ShutdownGrace time.Duration
	// UploadPurgeAge and UploadPurgeInterval: uploads older than the age are removed every interval; zero age disables.
	UploadPurgeAge      time.Duration
	UploadPurgeInterval time.Duration

	// Storage is StorageFilesystem (DataDir) or StorageS3 (S3; DataDir then only keeps local state such as the
	// generated admin password). Object storage lets several replicas serve one bucket; it requires the shared HTTP
	// secret.
	Storage string
	S3      S3Config
	// BlobRedirect answers blob downloads from object storage with a redirect to a presigned URL instead of
	// proxying the bytes. Clients then need to reach the storage endpoint themselves.
	BlobRedirect bool
	// Redis is the blob-descriptor cache shared by replicas; without addresses each process caches in memory.
	Redis RedisConfig

	// BodyIdleTimeout cuts a request whose body sends nothing for this long (a slow body that keeps moving is never
	// cut); zero disables.
	BodyIdleTimeout time.Duration
	// MaxUnauthenticatedConns bounds, per client address, the connections on which no request has authenticated
	// yet; more are closed on accept. Zero disables; with NoAuth it does not apply.
	MaxUnauthenticatedConns int

	// ServiceAccountTokens, when its Audience is set, also accepts Kubernetes ServiceAccount tokens (auth/satoken);
	// it needs an access policy. See serviceaccount.go.
	ServiceAccountTokens satoken.Config

	// ManifestCacheMB bounds the memory of the manifest cache (manifestcaching.go) in MiB; zero turns it off.
	ManifestCacheMB int
	// GC schedules garbage collection (gcserve.go); off by default.
	GC GCConfig
}

// DefaultConfig returns the zero-configuration settings.
func DefaultConfig() Config {
	return Config{
		Addr:                DefaultAddr,
		DataDir:             DefaultDataDir,
		MetricsAddr:         DefaultMetricsAddr,
		LogLevel:            DefaultLogLevel,
		LogFormat:           DefaultLogFormat,
		Realm:               DefaultRealm,
		ShutdownGrace:       DefaultShutdownGrace,
		UploadPurgeAge:      DefaultUploadPurgeAge,
		UploadPurgeInterval: DefaultUploadPurgeInterval,
		Storage:             StorageFilesystem,
		S3:                  S3Config{Region: DefaultS3Region, Secure: true},

		BodyIdleTimeout:         DefaultBodyIdleTimeout,
		MaxUnauthenticatedConns: DefaultMaxUnauthenticatedConns,
		ManifestCacheMB:         DefaultManifestCacheMB,
		GC:                      GCConfig{Window: gc.DefaultWindow},
	}
}

// HtpasswdPath is the effective htpasswd file: Htpasswd, or DataDir/htpasswd when that is empty.
func (c Config) HtpasswdPath() string {
	if c.Htpasswd != "" {
		return c.Htpasswd
	}
	return filepath.Join(c.DataDir, "htpasswd")
}

// AccessPolicyPath is the effective access policy file: AccessPolicy, or access-policy.yaml next to the htpasswd
// file when that exists (where `registry-kit htpasswd add --role` writes it), or "" for none.
func (c Config) AccessPolicyPath() string {
	if c.AccessPolicy != "" || c.NoAuth {
		return c.AccessPolicy
	}
	if p := access.DefaultPath(c.HtpasswdPath()); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Redacted returns a copy safe to print: the HTTP secret, S3 keys and Redis password are replaced, so is anything
// that may be a credential inside a Redis address or the S3 endpoint (user:password@), and derived defaults are
// filled in.
func (c Config) Redacted() Config {
	for _, s := range []*string{&c.HTTPSecret, &c.S3.AccessKey, &c.S3.SecretKey, &c.Redis.Password} {
		if *s != "" {
			*s = redacted
		}
	}
	c.Redis.Addrs = slices.Clone(c.Redis.Addrs)
	for i, a := range c.Redis.Addrs {
		c.Redis.Addrs[i] = storageconfig.RedactAddr(a)
	}
	c.S3.Endpoint = storageconfig.RedactAddr(c.S3.Endpoint)
	c.Htpasswd = c.HtpasswdPath()
	c.AccessPolicy = c.AccessPolicyPath()
	return c
}

// Validate reports every problem in c, each naming its key. It touches the filesystem only to check access.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	c.GC.validate(c, add)
	if err := checkAddr(c.Addr, false); err != nil {
		add("addr", "%w", err)
	}
	if err := checkAddr(c.MetricsAddr, true); err != nil {
		add("metrics-addr", "%w", err)
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
		add("metrics-addr", "must differ from addr (%s)", c.Addr)
	}
	dataDirOK := false
	if c.DataDir == "" {
		add("data-dir", "must not be empty")
	} else if err := checkWritableDir(c.DataDir); err != nil {
		add("data-dir", "%s is not writable: %w", c.DataDir, err)
	} else {
		dataDirOK = true
	}
	if !c.NoAuth && (dataDirOK || c.Htpasswd != "") {
		if err := checkHtpasswd(c.HtpasswdPath()); err != nil {
			add("htpasswd", "%w", err)
		}
	}
	if p := c.AccessPolicyPath(); p != "" {
		if c.NoAuth {
			add("access-policy", "needs authentication: it cannot be combined with no-auth")
		} else if _, err := access.ReadFile(p); err != nil {
			add("access-policy", "%w", err)
		}
	}
	errs = append(errs, c.validateTLS()...)
	if _, ok := logLevels[c.LogLevel]; !ok {
		add("log-level", "unknown level %q (want debug, info, warn or error)", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log-format", "unknown format %q (want text or json)", c.LogFormat)
	}
	if c.HTTPSecretFile != "" {
		if c.HTTPSecret != "" {
			add("http-secret-file", "set together with http-secret; give only one")
		} else if _, err := readSecretFile(c.HTTPSecretFile); err != nil {
			add("http-secret-file", "%w", err)
		}
	}
	if c.Realm == "" && !c.NoAuth {
		add("realm", "must not be empty")
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		add("realm", "must not contain quotes, backslashes or line breaks")
	}
	if c.ShutdownGrace < 0 {
		add("shutdown-grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	if c.UploadPurgeAge < 0 {
		add("upload-purge-age", "must not be negative, got %s", c.UploadPurgeAge)
	}
	if c.UploadPurgeAge > 0 && c.UploadPurgeInterval <= 0 {
		add("upload-purge-interval", "must be positive when upload-purge-age is set, got %s", c.UploadPurgeInterval)
	}
	if c.BodyIdleTimeout < 0 {
		add("body-idle-timeout", "must not be negative, got %s", c.BodyIdleTimeout)
	}
	if c.MaxUnauthenticatedConns < 0 {
		add("max-unauthenticated-conns", "must not be negative, got %d", c.MaxUnauthenticatedConns)
	}
	if c.ManifestCacheMB < 0 {
		add("manifest-cache-mb", "must not be negative, got %d", c.ManifestCacheMB)
	}
	errs = append(errs, c.validateStorage()...)
	errs = append(errs, c.validateRedis()...)
	errs = append(errs, c.validateServiceAccountTokens()...)
	return errors.Join(errs...)
}

func (c Config) validateTLS() []error {
	switch {
	case c.TLSCert == "" && c.TLSKey == "":
		return nil
	case c.TLSCert == "":
		return []error{errors.New("tls: tls-key given without tls-cert")}
	case c.TLSKey == "":
		return []error{errors.New("tls: tls-cert given without tls-key")}
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		return []error{fmt.Errorf("tls: loading tls-cert %s and tls-key %s: %w", c.TLSCert, c.TLSKey, err)}
	}
	return nil
}

func checkAddr(addr string, mayBeEmpty bool) error {
	if addr == "" {
		if mayBeEmpty {
			return nil
		}
		return errors.New("must not be empty")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("port %d out of range", n)
	}
	return nil
}

// checkWritableDir checks dir (or, when it does not exist yet, its nearest existing parent) is a writable directory.
func checkWritableDir(dir string) error {
	for probe := filepath.Clean(dir); ; probe = filepath.Dir(probe) {
		fi, err := os.Stat(probe)
		if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) && filepath.Dir(probe) != probe {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", probe)
		}
		f, err := os.CreateTemp(probe, ".registry-kit-probe-*")
		if err != nil {
			return err
		}
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
}

// checkHtpasswd accepts a readable regular file, or a missing file (it will be created with the admin user).
func checkHtpasswd(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// FallbackDataDir returns where a user who cannot write DefaultDataDir keeps data: $XDG_DATA_HOME/registry-kit or
// ~/.local/share/registry-kit. ok is false when DefaultDataDir is usable and no fallback is needed.
func FallbackDataDir() (dir string, ok bool) { return fallbackDataDir(DefaultDataDir) }

func fallbackDataDir(preferred string) (string, bool) {
	if checkWritableDir(preferred) == nil {
		return "", false
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "registry-kit"), true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(home, ".local", "share", "registry-kit"), true
}
