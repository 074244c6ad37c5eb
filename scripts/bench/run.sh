#!/usr/bin/env bash
# All benchmarks (make bench), in one run, each table side by side with its references:
#   1. serve.sh: blob pull/push MiB/s, peak and idle RSS of registry-kit (auth, no-auth) against stock distribution
#      v3.1.2 and http.FileServer serving the same file;
#   2. scripts/bench/auth: manifest HEAD/GET req/s at c=1 and c=16, chunked push and crane push, registry-kit and
#      stock v3.1.2 with and without auth, and http.FileServer serving the same manifest bytes;
#   3. scaleout.sh: filesystem vs S3 (MinIO, started by the driver) + Redis with one and two replicas: push/pull,
#      manifest GET/s and blob HEAD/s with the object-storage requests each costs (needs minio and redis-server).
# REGISTRY_KIT_BIN picks the registry-kit binary (default bin/registry-kit). Flags for one part go through
# SERVE_FLAGS, AUTH_FLAGS and SCALEOUT_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
rk=${REGISTRY_KIT_BIN:-bin/registry-kit}
[ -x "$rk" ] || make build >&2
cache=${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}

echo "== serve: blob pull/push MiB/s and RSS (registry-kit, stock v3.1.2, http.FileServer) =="
# shellcheck disable=SC2086
REGISTRY_KIT_BIN="$rk" scripts/bench/serve.sh ${SERVE_FLAGS:-}

echo
echo "== auth: manifest requests/s and push cost (registry-kit, stock v3.1.2, http.FileServer) =="
# shellcheck disable=SC2086
GOFLAGS=-mod=mod go run ./scripts/bench/auth -rk "$rk" -stock "$cache/bin/registry" ${AUTH_FLAGS:-}

echo
echo "== scale-out: filesystem vs S3 (MinIO) + Redis =="
if [ -x "$cache/bin/minio" ] && command -v redis-server >/dev/null; then
  # shellcheck disable=SC2086
  REGISTRY_KIT_BIN="$rk" scripts/bench/scaleout.sh ${SCALEOUT_FLAGS:-}
else
  echo "skipped: needs $cache/bin/minio and redis-server (scripts/setup.sh installs both)"
  exit 1
fi

echo
echo "== gc: mark+sweep time vs stock garbage-collect, HEAD/s during collection =="
REGISTRY_KIT_BIN="$rk" scripts/bench/gc.sh
