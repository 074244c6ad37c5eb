#!/usr/bin/env bash
# Blob pull/push throughput and peak RSS of registry-kit serve (auth and --no-auth) side by side with stock
# distribution v3.1.2 and a plain Go http.FileServer, over loopback, in one run of about two minutes.
# Prints a table and the ratios against the targets. Flags are passed to the Go driver (scripts/bench/serve):
#   scripts/bench/serve.sh [-size-mb 1024] [-reps 5] [-push-reps 2] [-streams 4] [-stream-reps 3]
# REGISTRY_KIT_BIN picks the registry-kit binary (default bin/registry-kit, built by make build when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}
stock="$CACHE/bin/registry"
stock_mod=github.com/distribution/distribution/v3/cmd/registry@v3.1.2
if ! [ -x "$stock" ]; then
  echo "serve.sh: installing stock distribution ($stock_mod)" >&2
  mkdir -p "$CACHE/bin"
  GOBIN="$CACHE/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$stock_mod"
  echo "$stock_mod" > "$CACHE/bin/.registry.version"
fi

rk=${REGISTRY_KIT_BIN:-bin/registry-kit}
if ! [ -x "$rk" ]; then
  make build >&2
fi

driver=$(mktemp -d /tmp/rk-bench-driver-XXXXXX)
trap 'rm -rf "$driver"' EXIT
GOFLAGS=-mod=mod go build -o "$driver/serve-bench" ./scripts/bench/serve
"$driver/serve-bench" -rk "$rk" -stock "$stock" "$@"
