package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws" // registers the "s3aws" driver

	"github.com/registry-kit/registry-kit/registry/storageconfig"
)

// Storage kinds.
const (
	StorageFilesystem = "filesystem"
	StorageS3         = "s3"

	// DefaultS3Region is the region signed into S3 requests when none is given; S3-compatible servers accept it.
	DefaultS3Region = storageconfig.DefaultS3Region

	// s3DriverName is the name distribution's s3-aws driver registers under.
	s3DriverName = "s3aws"
)

// errUploadUnknown explains why object storage needs a shared HTTP secret: upload state is signed with it, and a
// PATCH or PUT that reaches another replica cannot verify state signed with a different secret.
const errUploadUnknown = `required with storage s3: every replica on the bucket must share it, or uploads fail ` +
	`("blob upload invalid: invalid secret", "blob upload unknown" in older registries) when a PATCH lands on another ` +
	`replica (give http-secret-file or REGISTRY_KIT_HTTP_SECRET)`

// S3Config is S3-compatible object storage, used with Storage "s3". Credentials come from AccessKey/SecretKey
// (the environment) or AccessKeyFile/SecretKeyFile; with neither, the AWS SDK's default chain applies (instance or
// pod identity).
type S3Config struct {
	// Endpoint is the S3 API URL (http://minio:9000) or HOST[:PORT]; empty means AWS S3 for Region.
	Endpoint string
	Region   string
	Bucket   string
	// RootDirectory is the key prefix everything is stored under, e.g. /registry; empty means the bucket root.
	RootDirectory string
	// ForcePathStyle addresses the bucket as ENDPOINT/BUCKET instead of BUCKET.ENDPOINT (MinIO, Ceph).
	ForcePathStyle bool
	// Secure selects https; an Endpoint with an explicit scheme must agree with it.
	Secure bool
	// SkipVerify accepts any TLS certificate from the endpoint.
	SkipVerify bool

	AccessKey, SecretKey         string
	AccessKeyFile, SecretKeyFile string
}

// RedisConfig is the Redis blob-descriptor cache shared by replicas. Empty Addrs means an in-process cache.
type RedisConfig struct {
	// Addrs are HOST:PORT of one server, or seeds of a cluster.
	Addrs []string
	DB    int
	// Password comes from the environment; PasswordFile holds it otherwise.
	Password     string
	PasswordFile string
}

func (c Config) objectStorage() bool { return c.Storage == StorageS3 }

// validateStorage checks the storage, S3 and blob-redirect keys.
func (c Config) validateStorage() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	switch c.Storage {
	case StorageFilesystem:
		s := c.S3
		for key, set := range map[string]bool{
			"s3-endpoint": s.Endpoint != "", "s3-bucket": s.Bucket != "", "s3-root-directory": s.RootDirectory != "",
			"s3-force-path-style": s.ForcePathStyle, "s3-skip-verify": s.SkipVerify,
			"s3-access-key-file": s.AccessKeyFile != "", "s3-secret-key-file": s.SecretKeyFile != "",
			"blob-redirect": c.BlobRedirect,
		} {
			if set {
				add(key, "only applies with storage s3 (storage is filesystem)")
			}
		}
		return sortErrors(errs)
	case StorageS3:
	default:
		add("storage", "unknown storage %q (want filesystem or s3)", c.Storage)
		return errs
	}
	s := c.S3
	for _, p := range c.sharedS3().Validate() {
		errs = append(errs, p)
	}
	errs = append(errs, checkSecretPair("s3-access-key", s.AccessKey, s.AccessKeyFile)...)
	errs = append(errs, checkSecretPair("s3-secret-key", s.SecretKey, s.SecretKeyFile)...)
	hasAccess, hasSecret := s.AccessKey != "" || s.AccessKeyFile != "", s.SecretKey != "" || s.SecretKeyFile != ""
	if hasAccess != hasSecret {
		if hasAccess {
			add("s3-secret-key", "missing: s3-access-key is set (give REGISTRY_KIT_S3_SECRET_KEY or s3-secret-key-file)")
		} else {
			add("s3-access-key", "missing: s3-secret-key is set (give REGISTRY_KIT_S3_ACCESS_KEY or s3-access-key-file)")
		}
	}
	if c.HTTPSecret == "" && c.HTTPSecretFile == "" {
		add("http-secret-file", errUploadUnknown)
	}
	if !c.NoAuth {
		if _, err := os.Stat(c.HtpasswdPath()); errors.Is(err, fs.ErrNotExist) {
			add("htpasswd", "%s does not exist: with storage s3 every replica must read the same users, so create the file "+
				"(registry-kit htpasswd add) instead of letting each replica generate its own admin password", c.HtpasswdPath())
		}
	}
	return errs
}

// validateRedis checks the redis keys.
func (c Config) validateRedis() []error {
	var errs []error
	r := c.Redis
	for _, p := range (storageconfig.Redis{Addrs: r.Addrs, DB: r.DB}).Validate() {
		errs = append(errs, p)
	}
	if len(r.Addrs) == 0 && (r.Password != "" || r.PasswordFile != "") {
		errs = append(errs, errors.New("redis-password-file: only applies with redis-addr"))
	}
	return append(errs, checkSecretPair("redis-password", r.Password, r.PasswordFile)...)
}

// checkSecretPair: a secret given both in the environment and as a file is ambiguous; a file must be readable
// and non-empty. Messages never contain the secret.
func checkSecretPair(key, value, file string) []error {
	if file == "" {
		return nil
	}
	if value != "" {
		return []error{fmt.Errorf("%s-file: set together with %s_%s; give only one", key, envPrefix, envName(key))}
	}
	if _, err := readSecretFile(file); err != nil {
		return []error{fmt.Errorf("%s-file: %w", key, err)}
	}
	return nil
}

// envPrefix is the prefix of the environment variables the CLI reads; errors name them.
const envPrefix = "REGISTRY_KIT"

func envName(key string) string { return strings.ToUpper(strings.ReplaceAll(key, "-", "_")) }

// sharedS3 is the part of the S3 settings generate writes into the server's arguments.
func (c Config) sharedS3() storageconfig.S3 {
	s := c.S3
	return storageconfig.S3{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, RootDirectory: s.RootDirectory,
		Secure: s.Secure, SkipVerify: s.SkipVerify}
}

// s3Params are the s3-aws driver's parameters, with the credentials read from their files.
func (c Config) s3Params() (configuration.Parameters, error) {
	s := c.S3
	access, secret := s.AccessKey, s.SecretKey
	var err error
	if s.AccessKeyFile != "" {
		if access, err = readSecretFile(s.AccessKeyFile); err != nil {
			return nil, fmt.Errorf("reading s3-access-key-file: %w", err)
		}
	}
	if s.SecretKeyFile != "" {
		if secret, err = readSecretFile(s.SecretKeyFile); err != nil {
			return nil, fmt.Errorf("reading s3-secret-key-file: %w", err)
		}
	}
	p := configuration.Parameters{
		"region":         s.Region,
		"bucket":         s.Bucket,
		"forcepathstyle": s.ForcePathStyle,
		"secure":         s.Secure,
		"skipverify":     s.SkipVerify,
		"v4auth":         true,
	}
	if s.Endpoint != "" {
		ep := s.Endpoint
		if !strings.Contains(ep, "://") {
			ep = map[bool]string{true: "https://", false: "http://"}[s.Secure] + ep
		}
		p["regionendpoint"] = strings.TrimSuffix(ep, "/")
	}
	if s.RootDirectory != "" {
		p["rootdirectory"] = s.RootDirectory
	}
	if access != "" {
		p["accesskey"], p["secretkey"] = access, secret
	}
	return p, nil
}

// redisPassword is the Redis password from the environment or its file.
func (c Config) redisPassword() (string, error) {
	if c.Redis.PasswordFile == "" {
		return c.Redis.Password, nil
	}
	pw, err := readSecretFile(c.Redis.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading redis-password-file: %w", err)
	}
	return pw, nil
}

// sortErrors orders errors built from a map, so messages come out the same every run.
func sortErrors(errs []error) []error {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}
