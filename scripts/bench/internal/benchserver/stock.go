package benchserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// StockConfig is the configuration of a stock distribution v3.1.2 registry on filesystem storage, without access
// log. Each driver picks the options it compares against; see Render for what each one adds.
type StockConfig struct {
	RootDir string // filesystem storage root
	Addr    string // http.addr
	Secret  string // http.secret; Write makes a random one when empty
	// LogLevel is log.level, e.g. "warn" or "info".
	LogLevel string
	// Delete is storage.delete.enabled.
	Delete bool
	// InmemoryCache sets storage.cache.blobdescriptor to inmemory.
	InmemoryCache bool
	// NoUploadPurging turns storage.maintenance.uploadpurging off.
	NoUploadPurging bool
	// Nosniff adds the X-Content-Type-Options: nosniff response header.
	Nosniff bool
	// DebugAddr, when set, serves Prometheus metrics at /metrics on this http.debug address.
	DebugAddr string
	// AllowManifestURLs allows http and https foreign-layer URLs in manifests (validation.manifests.urls.allow).
	AllowManifestURLs bool
	// Htpasswd, when set, turns on htpasswd auth (realm "bench") with this file.
	Htpasswd string
	// S3, when set, stores in S3-compatible object storage instead of RootDir (redirects off, path style).
	S3 *StockS3
	// Redis, when set, is the HOST:PORT of the blob-descriptor cache (storage.cache.blobdescriptor: redis).
	Redis string
}

// StockS3 is the s3 storage of a stock registry.
type StockS3 struct {
	Endpoint, Bucket, RootDirectory, AccessKey, SecretKey string
}

// Render is the configuration as YAML.
func (c StockConfig) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: %s\n  accesslog:\n    disabled: true\n", c.LogLevel)
	if c.S3 != nil {
		fmt.Fprintf(&b, "storage:\n  s3:\n    regionendpoint: %s\n    region: us-east-1\n    bucket: %s\n    rootdirectory: %s\n"+
			"    accesskey: %s\n    secretkey: %s\n    secure: false\n    forcepathstyle: true\n  redirect:\n    disable: true\n",
			c.S3.Endpoint, c.S3.Bucket, c.S3.RootDirectory, c.S3.AccessKey, c.S3.SecretKey)
	} else {
		fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %s\n", c.RootDir)
	}
	switch {
	case c.Redis != "":
		b.WriteString("  cache:\n    blobdescriptor: redis\n")
	case c.InmemoryCache:
		b.WriteString("  cache:\n    blobdescriptor: inmemory\n")
	}
	fmt.Fprintf(&b, "  delete:\n    enabled: %t\n", c.Delete)
	if c.NoUploadPurging {
		b.WriteString("  maintenance:\n    uploadpurging:\n      enabled: false\n")
	}
	fmt.Fprintf(&b, "http:\n  addr: %s\n  secret: %s\n", c.Addr, c.Secret)
	if c.Nosniff {
		b.WriteString("  headers:\n    X-Content-Type-Options: [nosniff]\n")
	}
	if c.DebugAddr != "" {
		fmt.Fprintf(&b, "  debug:\n    addr: %s\n    prometheus:\n      enabled: true\n      path: /metrics\n", c.DebugAddr)
	}
	if c.AllowManifestURLs {
		b.WriteString("validation:\n  manifests:\n    urls:\n      allow: ['^https?://']\n")
	}
	if c.Redis != "" {
		fmt.Fprintf(&b, "redis:\n  addrs: [%s]\n", c.Redis)
	}
	if c.Htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: bench\n    path: %s\n", c.Htpasswd)
	}
	return b.String()
}

// Write writes the configuration to path (mode 0600), with a random http secret when Secret is empty.
func (c StockConfig) Write(path string) error {
	if c.Secret == "" {
		s := make([]byte, 16)
		if _, err := rand.Read(s); err != nil {
			return fmt.Errorf("making http secret: %w", err)
		}
		c.Secret = hex.EncodeToString(s)
	}
	if err := os.WriteFile(path, []byte(c.Render()), 0o600); err != nil {
		return fmt.Errorf("writing stock registry config: %w", err)
	}
	return nil
}

// StartStock writes c to dir/config.yml and starts the stock registry bin on it with OTEL_TRACES_EXPORTER=none
// (it otherwise tries to export traces), its output in dir/server.log. It does not wait for it to answer.
func StartStock(ctx context.Context, bin, dir string, c StockConfig) (*Process, error) {
	conf := filepath.Join(dir, "config.yml")
	if err := c.Write(conf); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", conf)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	return Start(cmd, filepath.Join(dir, LogName))
}

// ServeArgs are the arguments of `registry-kit serve` on filesystem storage under dataDir: auth with htpasswdFile,
// or --no-auth when it is empty; metricsAddr "" turns the metrics listener off.
func ServeArgs(addr, dataDir, metricsAddr, logLevel, htpasswdFile string) []string {
	args := []string{"serve", "--addr", addr, "--data-dir", dataDir, "--metrics-addr", metricsAddr, "--log-level", logLevel}
	if htpasswdFile != "" {
		return append(args, "--htpasswd", htpasswdFile)
	}
	return append(args, "--no-auth")
}

// User is the one user WriteHtpasswd writes.
const User = "bench"

// WriteHtpasswd writes dir/htpasswd with User at the given bcrypt cost and a random password, and returns the
// file's path and the password.
func WriteHtpasswd(dir string, cost int) (path, user, pass string, err error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", "", "", fmt.Errorf("making password: %w", err)
	}
	user, pass = User, hex.EncodeToString(b)
	f := htpasswd.New()
	if err := f.Set(user, pass, cost); err != nil {
		return "", "", "", fmt.Errorf("hashing password: %w", err)
	}
	path = filepath.Join(dir, "htpasswd")
	if err := f.WriteFile(path); err != nil {
		return "", "", "", fmt.Errorf("writing htpasswd: %w", err)
	}
	return path, user, pass, nil
}
