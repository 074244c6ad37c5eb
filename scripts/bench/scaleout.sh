#!/usr/bin/env bash
# registry-kit serve on filesystem storage, on S3 (MinIO) + Redis with one replica, and with two replicas sharing
# bucket, Redis and HTTP secret: blob push/pull MB/s and manifest GET/s over loopback, in one run, as a table.
# Flags go to the Go driver (scripts/bench/scaleout): [-size-mb 64] [-reps 4] [-streams 2] [-c 16] [-d 5s]
# Needs minio ($REGISTRY_KIT_CACHE/bin/minio, built by scripts/setup.sh with SETUP_MINIO=1), redis-server and curl.
# REGISTRY_KIT_BIN picks the registry-kit binary (default bin/registry-kit, built by make build when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}
minio="$CACHE/bin/minio"
if ! [ -x "$minio" ]; then
  echo "scaleout.sh: $minio is missing; build it with:" >&2
  echo "  GOBIN=$CACHE/bin GOFLAGS=-mod=mod go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c" >&2
  exit 1
fi
command -v redis-server >/dev/null || { echo "scaleout.sh: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }

rk=${REGISTRY_KIT_BIN:-bin/registry-kit}
if ! [ -x "$rk" ]; then
  make build >&2
fi

driver=$(mktemp -d /tmp/rk-bench-scaleout-XXXXXX)
trap 'rm -rf "$driver"' EXIT
GOFLAGS=-mod=mod go build -o "$driver/scaleout-bench" ./scripts/bench/scaleout
"$driver/scaleout-bench" -rk "$rk" -minio "$minio" "$@"
