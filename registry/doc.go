// Package registry runs registry-kit's container registry: CNCF distribution embedded as a library, behind a typed,
// validated Config. It owns the server's storage (a filesystem directory, or an S3-compatible bucket that several
// replicas share with a Redis blob-descriptor cache), the zero-configuration admin user, health (/healthz, /readyz
// checking storage and Redis), Prometheus metrics, a sendfile fast path for filesystem blob downloads, the scheduled
// purge of abandoned uploads, 507 answers for a full disk and graceful shutdown. Build a Server with New and serve it
// with Run.
package registry
