package storageconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultS3Region is the region signed into S3 requests when none is given; S3-compatible servers accept any.
const DefaultS3Region = "us-east-1"

// Problem is one invalid setting. Key is the flag name serve and generate both use (s3-bucket, redis-addr, ...),
// so each caller can spell it its own way ("s3-bucket: ..." in serve, "--s3-bucket: ..." in generate). Messages
// never contain a credential.
type Problem struct {
	Key string
	Err error
}

func (p *Problem) Error() string { return p.Key + ": " + p.Err.Error() }
func (p *Problem) Unwrap() error { return p.Err }

// S3 are the object-storage settings both sides share. Credentials are not part of it: they never travel in
// arguments.
type S3 struct {
	Endpoint      string // http(s)://HOST[:PORT] or HOST[:PORT]; empty means AWS S3 for Region
	Region        string
	Bucket        string
	RootDirectory string // key prefix such as /registry; empty means the bucket root
	Secure        bool   // TLS to the endpoint
	SkipVerify    bool   // accept any TLS certificate (needs Secure)
}

// Validate reports every problem with s, in key order of the flags.
func (s S3) Validate() []*Problem {
	var ps []*Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, &Problem{Key: key, Err: fmt.Errorf(format, args...)})
	}
	if s.Bucket == "" {
		add("s3-bucket", "required with storage s3")
	} else if err := checkBucket(s.Bucket); err != nil {
		add("s3-bucket", "%q %w", s.Bucket, err)
	}
	if s.Region == "" {
		add("s3-region", "required with storage s3 (any value, such as %s, for S3-compatible servers)", DefaultS3Region)
	}
	if s.Endpoint != "" {
		if err := checkEndpoint(s.Endpoint, s.Secure); err != nil {
			add("s3-endpoint", "%w", err)
		}
	}
	if s.RootDirectory != "" && !validRootDirectory(s.RootDirectory) {
		add("s3-root-directory", "%q must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)", s.RootDirectory)
	}
	if s.SkipVerify && !s.Secure {
		add("s3-skip-verify", "only applies with s3-secure (TLS is off)")
	}
	return ps
}

// Redis is the blob-descriptor cache both sides share: Addrs of one server or the seeds of a cluster, and DB.
type Redis struct {
	Addrs []string
	DB    int
}

// Validate reports every problem with r. An address holding credentials is refused without echoing it.
func (r Redis) Validate() []*Problem {
	var ps []*Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, &Problem{Key: key, Err: fmt.Errorf(format, args...)})
	}
	for _, a := range r.Addrs {
		if err := CheckRedisAddr(a); err != nil {
			add("redis-addr", "%w", err)
		}
	}
	if len(r.Addrs) == 0 && r.DB != 0 {
		add("redis-db", "only applies with redis-addr")
	}
	if r.DB < 0 {
		add("redis-db", "must not be negative, got %d", r.DB)
	}
	if len(r.Addrs) > 1 && r.DB != 0 {
		add("redis-db", "a Redis cluster (several redis-addr) has only db 0, got %d", r.DB)
	}
	return ps
}

// ErrRedisCredentials is the problem of a Redis address that holds a password (redis://:pw@host, pw@host:6379).
var ErrRedisCredentials = errors.New("must be HOST:PORT without credentials: give the Redis password in " +
	"redis-password-file or REGISTRY_KIT_REDIS_PASSWORD (generate/deploy: --redis-password-file)")

// CheckRedisAddr accepts HOST:PORT with a port of 1-65535. A URL (redis://...) or anything with '@' is refused with
// ErrRedisCredentials or a message that does not repeat the part that may be a password.
func CheckRedisAddr(a string) error {
	if strings.Contains(a, "@") {
		return ErrRedisCredentials
	}
	if i := strings.Index(a, "://"); i >= 0 {
		return fmt.Errorf("%q must be HOST:PORT, not a URL", RedactAddr(a))
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not HOST:PORT", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("port %d out of range", n)
	}
	return nil
}

// RedactAddr returns a with anything that may be a credential replaced: the user information before '@', and
// for a URL everything but its scheme and host. Safe to log and print.
func RedactAddr(a string) string {
	if i := strings.LastIndex(a, "@"); i >= 0 {
		a = "REDACTED@" + a[i+1:]
		if j := strings.Index(a, "/"); j >= 0 {
			a = a[:j]
		}
		return a
	}
	return a
}

func validRootDirectory(d string) bool {
	return strings.HasPrefix(d, "/") && !strings.Contains(d, "//") &&
		!strings.Contains(d+"/", "/../") && !strings.Contains(d+"/", "/./") && !strings.ContainsAny(d, " \t\r\n\\")
}

// checkBucket follows the S3 bucket naming rules (3-63 lower-case letters, digits, '-' and '.', starting and ending
// with a letter or digit).
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("must be 3 to 63 characters")
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return errors.New("may hold only lower-case letters, digits, '-' and '.'")
		}
	}
	if strings.Trim(b, "-.") != b {
		return errors.New("must start and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return errors.New("must not contain two adjacent periods")
	}
	return nil
}

// checkEndpoint accepts http(s)://HOST[:PORT] or HOST[:PORT]; a scheme must agree with secure.
func checkEndpoint(ep string, secure bool) error {
	raw := ep
	if !strings.Contains(ep, "://") {
		raw = "https://" + ep
	}
	u, err := url.Parse(raw)
	if err != nil && strings.Contains(ep, "@") {
		return errors.New("must not hold credentials (give REGISTRY_KIT_S3_ACCESS_KEY/REGISTRY_KIT_S3_SECRET_KEY or the key files)")
	}
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL such as http://127.0.0.1:9000 or a HOST[:PORT]", ep)
	}
	if u.User != nil {
		return errors.New("must not hold credentials (give REGISTRY_KIT_S3_ACCESS_KEY/REGISTRY_KIT_S3_SECRET_KEY or the key files)")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a path or query (the bucket is s3-bucket)", ep)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be 1-65535", ep)
		}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: scheme must be http or https", ep)
	case u.Scheme == "http" && secure && strings.Contains(ep, "://"):
		return fmt.Errorf("%q is plain http but s3-secure is true; set s3-secure to false for an endpoint without TLS", ep)
	case u.Scheme == "https" && !secure && strings.Contains(ep, "://"):
		return fmt.Errorf("%q is https but s3-secure is false", ep)
	}
	return nil
}
