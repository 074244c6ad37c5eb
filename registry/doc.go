// Package registry runs registry-kit's container registry: CNCF distribution embedded as a library, behind a typed,
// validated Config. It owns the server's filesystem storage, the zero-configuration admin user, health (/healthz,
// /readyz), Prometheus metrics, a sendfile fast path for blob downloads and graceful shutdown. Build a Server with New
// and serve it with Run.
package registry
