#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine: the Debian packages (registry clients, Apache
# htpasswd, containerd, etcd, ...) and the Go-built tools (crane, oras, cosign, crictl, stock distribution, the OCI
# conformance suite, MinIO). Go-built tools go to $REGISTRY_KIT_CACHE/bin and are reused on later runs.
set -euo pipefail

CACHE=${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}
BIN="$CACHE/bin"
mkdir -p "$BIN"

apt_packages=(
  skopeo podman containerd runc docker.io apache2-utils docker-registry
  etcd-server etcd-client containernetworking-plugins iptables nftables conntrack socat ethtool
  redis-server openssl jq zstd curl ca-certificates
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# go_tool NAME MODULE@VERSION: go install into $BIN unless that version is already there.
go_tool() {
  local name=$1 mod=$2 stamp="$BIN/.$1.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then return; fi
  echo "setup: building $name ($mod)"
  local t=$SECONDS
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$mod"
  echo "$mod" > "$stamp"
  echo "setup: built $name in $((SECONDS - t))s"
}

go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool oras oras.land/oras/cmd/oras@v1.3.6
go_tool crictl sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
go_tool registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
# cosign signs and verifies through the referrers API in TestReferrersCosign (about 4 CPU-minutes to build).
go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
# helm: the e2e tier lints, templates and installs manifests/chart with it (v4; it builds beside our k8s modules).
go_tool helm helm.sh/helm/v4/cmd/helm@v4.3.2

# The OCI distribution-spec conformance suite is a test binary built from its module's source.
conformance_mod=github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111
if ! { [ -x "$BIN/conformance" ] && [ "$(cat "$BIN/.conformance.version" 2>/dev/null)" = "$conformance_mod" ]; }; then
  echo "setup: building the OCI conformance suite"
  src=$(mktemp -d)
  GOFLAGS=-mod=mod go mod download -json "$conformance_mod" > "$src/mod.json"
  dir=$(jq -r .Dir "$src/mod.json")
  cp -r "$dir/." "$src/conformance" && chmod -R u+w "$src/conformance"
  (cd "$src/conformance" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$BIN/conformance" .)
  echo "$conformance_mod" > "$BIN/.conformance.version"
  rm -rf "$src"
fi

# MinIO: the S3-compatible server the scale-out tests store images in (no semver tags upstream).
go_tool minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

echo "setup: tools ready in $BIN"
