#!/usr/bin/env bash
# Garbage collection: mark+sweep time of `registry-kit gc` and stock `registry garbage-collect` on identical copies
# of a filesystem store with 1,000 and 10,000 manifests, and authenticated manifest HEAD/s while serve collects
# every second relative to without. Flags go to the Go driver (scripts/bench/gc): [-manifests 1000,10000] [-d 5s] [-c 16]
# REGISTRY_KIT_BIN picks the registry-kit binary (default bin/registry-kit, built by make build when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
rk=${REGISTRY_KIT_BIN:-bin/registry-kit}
[ -x "$rk" ] || make build >&2
driver=$(mktemp -d /tmp/rk-bench-gc-XXXXXX)
trap 'rm -rf "$driver"' EXIT
GOFLAGS=-mod=mod go build -o "$driver/gc-bench" ./scripts/bench/gc
"$driver/gc-bench" -rk "$rk" -stock "${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}/bin/registry" "$@"
