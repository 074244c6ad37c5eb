// Package storageconfig validates the object-storage (S3) and Redis settings that `registry-kit serve` runs with and
// that `registry-kit generate`/`deploy` write into the server's arguments, so both sides accept exactly the same
// values and a generated Deployment cannot crash-loop on settings serve refuses. It is pure (no I/O) and imports
// neither the server nor the generator: both import it.
package storageconfig
