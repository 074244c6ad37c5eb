package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/registry"
)

// envPrefix prefixes every environment variable serve reads: REGISTRY_KIT_DATA_DIR for --data-dir.
const envPrefix = "REGISTRY_KIT"

// secretKey is the HTTP secret itself: only from the environment (REGISTRY_KIT_HTTP_SECRET) or the config file, never a
// flag, so it does not show in the process list.
const secretKey = "http-secret"

// secretEnv are the keys that, like secretKey, are never flags: the object-storage keys and the Redis password come
// from the environment (or the config file), or from the matching *-file flag. The S3 keys also take the AWS SDK's
// variable names.
var secretEnv = map[string][]string{
	secretKey:        {envPrefix + "_HTTP_SECRET"},
	"s3-access-key":  {envPrefix + "_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"},
	"s3-secret-key":  {envPrefix + "_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"},
	"redis-password": {envPrefix + "_REDIS_PASSWORD"},
}

type serveOptions struct {
	streams     IOStreams
	v           *viper.Viper
	cmd         *cobra.Command
	printConfig bool
	checkConfig bool
}

func newServeCommand(streams IOStreams) *cobra.Command {
	o := &serveOptions{streams: streams, v: viper.New()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the container registry",
		Long: `Run the container registry (CNCF distribution, embedded).

With no configuration it stores images under /var/lib/registry (or ~/.local/share/registry-kit when that is not
writable), listens on :5000, serves metrics on :5001, and creates the user "admin" with a random password when no
htpasswd file exists, telling you where the password is.

Every flag can also be set with an environment variable REGISTRY_KIT_<FLAG> (REGISTRY_KIT_DATA_DIR for --data-dir) or
in a YAML --config file whose keys are the flag names. Flags win over the environment, the environment over the file.
The shared HTTP secret for several replicas comes from --http-secret-file or REGISTRY_KIT_HTTP_SECRET.

With --storage s3 several replicas serve one S3-compatible bucket. They need the same HTTP secret (required), and
should share a Redis blob-descriptor cache (--redis-addr). Credentials never come from flags: the S3 keys from
REGISTRY_KIT_S3_ACCESS_KEY/REGISTRY_KIT_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or
--s3-access-key-file/--s3-secret-key-file), the Redis password from REGISTRY_KIT_REDIS_PASSWORD or
--redis-password-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, notes, err := o.config()
			if err != nil {
				return err
			}
			if o.printConfig {
				return printConfig(streams.Out, cfg)
			}
			logger, err := newLogger(streams.ErrOut, cfg)
			if err != nil {
				return err
			}
			for _, n := range notes {
				logger.Info(n)
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			if o.checkConfig {
				_, err := fmt.Fprintln(streams.Out, "configuration ok")
				return err
			}
			srv, err := registry.New(cfg, registry.WithLogger(logger), registry.WithNotices(streams.ErrOut))
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	d := registry.DefaultConfig()
	f := cmd.Flags()
	f.String("addr", d.Addr, "HOST:PORT to serve the registry API, /healthz and /readyz on")
	f.String("data-dir", d.DataDir, "storage directory (images, and the generated admin password)")
	f.String("htpasswd", "", "htpasswd file (bcrypt); created with user admin when missing (default <data-dir>/htpasswd)")
	f.String("metrics-addr", d.MetricsAddr, `HOST:PORT to serve Prometheus /metrics on; "" disables`)
	f.String("config", "", "YAML configuration file; keys are the flag names")
	f.String("access-policy", "", "access policy file (YAML): who may pull, push and delete which repositories (default: every user may do everything)")
	f.Bool("no-auth", false, "serve without authentication (anyone who reaches the registry can push)")
	f.Bool("otel-traces", false, "export OpenTelemetry traces as the OTEL_* environment says (default OTLP to OTEL_EXPORTER_OTLP_ENDPOINT)")
	f.String("tls-cert", "", "PEM certificate file to serve HTTPS (with --tls-key)")
	f.String("tls-key", "", "PEM private key file for --tls-cert")
	f.String("log-level", d.LogLevel, "debug, info, warn or error (debug logs every request)")
	f.String("log-format", d.LogFormat, "text or json")
	f.String("http-secret-file", "", "file holding the secret replicas share to sign upload state (or REGISTRY_KIT_HTTP_SECRET)")
	f.Bool("delete-enabled", false, "allow deleting manifests and blobs")
	f.String("realm", d.Realm, "Basic authentication realm")
	f.Duration("shutdown-grace", d.ShutdownGrace, "how long in-flight requests may finish after SIGTERM")
	f.Duration("upload-purge-age", d.UploadPurgeAge, "remove unfinished uploads older than this (0 disables)")
	f.Duration("upload-purge-interval", d.UploadPurgeInterval, "how often to look for old uploads")
	f.String("storage", d.Storage, "where images are stored: filesystem (--data-dir) or s3 (S3-compatible object storage; several replicas may share it)")
	f.String("s3-endpoint", "", "S3 API endpoint, e.g. http://minio:9000 (default: AWS S3 in --s3-region)")
	f.String("s3-region", d.S3.Region, "S3 region (any value for S3-compatible servers)")
	f.String("s3-bucket", "", "S3 bucket (must exist)")
	f.String("s3-root-directory", "", "key prefix inside the bucket, e.g. /registry (default: the bucket root)")
	f.Bool("s3-force-path-style", false, "address the bucket as ENDPOINT/BUCKET (MinIO, Ceph) instead of BUCKET.ENDPOINT")
	f.Bool("s3-secure", d.S3.Secure, "use TLS to the S3 endpoint")
	f.Bool("s3-skip-verify", false, "accept any TLS certificate from the S3 endpoint")
	f.String("s3-access-key-file", "", "file holding the S3 access key (or REGISTRY_KIT_S3_ACCESS_KEY / AWS_ACCESS_KEY_ID)")
	f.String("s3-secret-key-file", "", "file holding the S3 secret key (or REGISTRY_KIT_S3_SECRET_KEY / AWS_SECRET_ACCESS_KEY)")
	f.Bool("blob-redirect", false, "redirect blob downloads to presigned S3 URLs instead of proxying them (clients must reach the S3 endpoint)")
	f.StringSlice("redis-addr", nil, "HOST:PORT of the Redis blob-descriptor cache replicas share (repeat or comma-separate for a cluster)")
	f.Int("redis-db", 0, "Redis database number")
	f.String("redis-password-file", "", "file holding the Redis password (or REGISTRY_KIT_REDIS_PASSWORD)")
	f.Duration("body-idle-timeout", d.BodyIdleTimeout, "cut a request whose body sends nothing for this long (a slow body that keeps moving is never cut; 0 disables)")
	f.Int("max-unauthenticated-conns", d.MaxUnauthenticatedConns, "connections one client address may hold before any request on them authenticated; more are closed at once (0 disables)")
	addServiceAccountFlags(f)
	f.Int("manifest-cache-mb", d.ManifestCacheMB, "memory for recently read manifests, answered without reading storage (0 disables)")
	f.Duration("gc-interval", 0, "collect garbage every this long while serving (unreferenced blobs older than --gc-window; 0 disables)")
	f.Duration("gc-window", d.GC.Window, "grace window: blob data and manifests newer than this are never collected")
	f.Bool("gc-delete-untagged", false, "scheduled collections also delete manifests untagged for longer than --gc-window")
	f.String("gc-retention-policy", "", "retention policy file (YAML) applied by scheduled collections (see registry-kit gc --help)")
	f.BoolVar(&o.printConfig, "print-config", false, "print the effective configuration (secrets redacted) and exit, without validating it")
	f.BoolVar(&o.checkConfig, "check-config", false, "validate the configuration as serve does before starting (files included) and exit: 0 when it would start")
	o.cmd = cmd
	return cmd
}

// keys are the configuration keys, flag names, in the order print-config shows them.
var keys = slices.Concat([]string{
	"addr", "data-dir", "htpasswd", "access-policy", "metrics-addr", "no-auth", "otel-traces", "tls-cert", "tls-key", "log-level", "log-format",
	"http-secret-file", secretKey, "delete-enabled", "realm", "shutdown-grace", "upload-purge-age", "upload-purge-interval",
	"storage", "s3-endpoint", "s3-region", "s3-bucket", "s3-root-directory", "s3-force-path-style", "s3-secure",
	"s3-skip-verify", "s3-access-key", "s3-secret-key", "s3-access-key-file", "s3-secret-key-file", "blob-redirect",
	"redis-addr", "redis-db", "redis-password", "redis-password-file", "body-idle-timeout", "max-unauthenticated-conns",
	"manifest-cache-mb", "gc-interval", "gc-window", "gc-delete-untagged", "gc-retention-policy",
}, serviceAccountKeys)

// config merges flags > env > file > defaults into a registry.Config. notes are things worth logging at startup.
func (o *serveOptions) config() (registry.Config, []string, error) {
	v, flags := o.v, o.cmd.Flags()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	for _, k := range keys {
		if fl := flags.Lookup(k); fl != nil {
			if err := v.BindPFlag(k, fl); err != nil {
				return registry.Config{}, nil, fmt.Errorf("binding flag --%s: %w", k, err)
			}
		}
	}
	for k, env := range secretEnv {
		if err := v.BindEnv(append([]string{k}, env...)...); err != nil {
			return registry.Config{}, nil, fmt.Errorf("binding %s: %w", env[0], err)
		}
	}
	file, _ := flags.GetString("config")
	if !flags.Changed("config") {
		file = os.Getenv(envPrefix + "_CONFIG")
	}
	if file != "" {
		if err := o.readConfigFile(file); err != nil {
			return registry.Config{}, nil, err
		}
	}

	var errs []error
	str := func(k string) string { return v.GetString(k) }
	boolean := func(k string) bool {
		b, err := strconv.ParseBool(fmt.Sprint(v.Get(k)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, fmt.Sprint(v.Get(k))))
		}
		return b
	}
	duration := func(k string) time.Duration {
		switch x := v.Get(k).(type) {
		case time.Duration:
			return x
		default:
			d, err := time.ParseDuration(fmt.Sprint(x))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 30s or 2h", k, fmt.Sprint(x)))
			}
			return d
		}
	}
	integer := func(k string) int {
		n, err := strconv.Atoi(fmt.Sprint(v.Get(k)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number", k, fmt.Sprint(v.Get(k))))
		}
		return n
	}
	// list accepts a YAML list, repeated flags and comma-separated values (the environment).
	list := func(k string) []string {
		var out []string
		for _, e := range v.GetStringSlice(k) {
			for _, p := range strings.Split(e, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	cfg := registry.Config{
		Addr:                str("addr"),
		DataDir:             str("data-dir"),
		Htpasswd:            str("htpasswd"),
		AccessPolicy:        str("access-policy"),
		MetricsAddr:         str("metrics-addr"),
		NoAuth:              boolean("no-auth"),
		Tracing:             boolean("otel-traces"),
		TLSCert:             str("tls-cert"),
		TLSKey:              str("tls-key"),
		LogLevel:            str("log-level"),
		LogFormat:           str("log-format"),
		HTTPSecret:          str(secretKey),
		HTTPSecretFile:      str("http-secret-file"),
		DeleteEnabled:       boolean("delete-enabled"),
		Realm:               str("realm"),
		ShutdownGrace:       duration("shutdown-grace"),
		UploadPurgeAge:      duration("upload-purge-age"),
		UploadPurgeInterval: duration("upload-purge-interval"),
		Storage:             str("storage"),
		S3: registry.S3Config{
			Endpoint:       str("s3-endpoint"),
			Region:         str("s3-region"),
			Bucket:         str("s3-bucket"),
			RootDirectory:  str("s3-root-directory"),
			ForcePathStyle: boolean("s3-force-path-style"),
			Secure:         boolean("s3-secure"),
			SkipVerify:     boolean("s3-skip-verify"),
			AccessKey:      str("s3-access-key"),
			SecretKey:      str("s3-secret-key"),
			AccessKeyFile:  str("s3-access-key-file"),
			SecretKeyFile:  str("s3-secret-key-file"),
		},
		BlobRedirect: boolean("blob-redirect"),
		Redis: registry.RedisConfig{
			Addrs:        list("redis-addr"),
			DB:           integer("redis-db"),
			Password:     str("redis-password"),
			PasswordFile: str("redis-password-file"),
		},
		BodyIdleTimeout:         duration("body-idle-timeout"),
		MaxUnauthenticatedConns: integer("max-unauthenticated-conns"),
		ServiceAccountTokens:    serviceAccountConfig(str, duration),
		ManifestCacheMB:         integer("manifest-cache-mb"),
		GC: registry.GCConfig{Interval: duration("gc-interval"), Window: duration("gc-window"),
			DeleteUntagged: boolean("gc-delete-untagged"), RetentionPolicy: str("gc-retention-policy")},
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	var notes []string
	explicit := flags.Changed("data-dir") || os.Getenv(envPrefix+"_DATA_DIR") != "" || v.InConfig("data-dir")
	if !explicit && cfg.DataDir == registry.DefaultDataDir {
		if dir, ok := registry.FallbackDataDir(); ok {
			notes = append(notes, fmt.Sprintf("%s is not writable by this user; using data-dir %s instead", registry.DefaultDataDir, dir))
			cfg.DataDir = dir
		}
	}
	return cfg, notes, nil
}

// readConfigFile loads a YAML file into viper, rejecting keys that are not flag names so typos do not pass silently.
func (o *serveOptions) readConfigFile(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parsing config file %s: %w", file, err)
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
	}
	var errs []error
	for k := range m {
		if !known[k] {
			errs = append(errs, fmt.Errorf("config: unknown key %q in %s", k, file))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	o.v.SetConfigType("yaml")
	if err := o.v.ReadConfig(strings.NewReader(string(b))); err != nil {
		return fmt.Errorf("parsing config file %s: %w", file, err)
	}
	return nil
}

func printConfig(w io.Writer, cfg registry.Config) error {
	r := cfg.Redacted()
	m := map[string]any{
		"addr": r.Addr, "data-dir": r.DataDir, "htpasswd": r.Htpasswd, "access-policy": r.AccessPolicy, "metrics-addr": r.MetricsAddr,
		"no-auth": r.NoAuth, "otel-traces": r.Tracing, "tls-cert": r.TLSCert, "tls-key": r.TLSKey, "log-level": r.LogLevel,
		"log-format": r.LogFormat, "http-secret-file": r.HTTPSecretFile, secretKey: r.HTTPSecret,
		"delete-enabled": r.DeleteEnabled, "realm": r.Realm, "shutdown-grace": r.ShutdownGrace.String(),
		"upload-purge-age": r.UploadPurgeAge.String(), "upload-purge-interval": r.UploadPurgeInterval.String(),
		"storage": r.Storage, "s3-endpoint": r.S3.Endpoint, "s3-region": r.S3.Region, "s3-bucket": r.S3.Bucket,
		"s3-root-directory": r.S3.RootDirectory, "s3-force-path-style": r.S3.ForcePathStyle, "s3-secure": r.S3.Secure,
		"s3-skip-verify": r.S3.SkipVerify, "s3-access-key": r.S3.AccessKey, "s3-secret-key": r.S3.SecretKey,
		"s3-access-key-file": r.S3.AccessKeyFile, "s3-secret-key-file": r.S3.SecretKeyFile,
		"blob-redirect": r.BlobRedirect, "redis-addr": r.Redis.Addrs, "redis-db": r.Redis.DB,
		"redis-password": r.Redis.Password, "redis-password-file": r.Redis.PasswordFile,
		"body-idle-timeout": r.BodyIdleTimeout.String(), "max-unauthenticated-conns": r.MaxUnauthenticatedConns,
		"manifest-cache-mb": r.ManifestCacheMB,
		"gc-interval":       r.GC.Interval.String(), "gc-window": r.GC.Window.String(), "gc-delete-untagged": r.GC.DeleteUntagged,
		"gc-retention-policy": r.GC.RetentionPolicy,
	}
	printServiceAccountConfig(m, r)
	b, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Errorf("printing configuration: %w", err)
	}
	_, err = w.Write(b)
	return err
}

func newLogger(w io.Writer, cfg registry.Config) (*slog.Logger, error) {
	level, err := registry.ParseLogLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format: unknown format %q (want text or json)", cfg.LogFormat)
}
