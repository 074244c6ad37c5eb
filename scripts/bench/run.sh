#!/usr/bin/env bash
# All benchmarks (make bench): registry-kit serve's blob data path against stock distribution v3.1.2 and
# http.FileServer (serve.sh), then the authentication benchmark (scripts/bench/auth) when it is present.
# REGISTRY_KIT_BIN picks the registry-kit binary (default bin/registry-kit).
set -euo pipefail
cd "$(dirname "$0")/../.."
rk=${REGISTRY_KIT_BIN:-bin/registry-kit}
[ -x "$rk" ] || make build >&2

echo "== serve: blob pull/push MiB/s and peak RSS =="
REGISTRY_KIT_BIN="$rk" scripts/bench/serve.sh

if [ -f scripts/bench/auth/main.go ]; then
  echo
  echo "== auth: authenticated request rate and push cost =="
  GOFLAGS=-mod=mod go run ./scripts/bench/auth -rk "$rk" -stock "${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}/bin/registry"
fi

echo
echo "== gc: mark+sweep time vs stock garbage-collect, HEAD/s during collection =="
REGISTRY_KIT_BIN="$rk" scripts/bench/gc.sh
