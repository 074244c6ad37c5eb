#!/usr/bin/env bash
# Builds the Kubernetes node and control-plane binaries the local test cluster runs, from the Go module proxy,
# once: the five binaries are cached under $CACHE_DIR/k8s/$K8S_VERSION and reused on every later run.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
CACHE_DIR=${CACHE_DIR:-${REGISTRY_KIT_CACHE:-/var/cache/registry-kit}}
out="$CACHE_DIR/k8s/$K8S_VERSION/bin"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() { for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if have_all; then
  echo "kubernetes $K8S_VERSION binaries: cached in $out"
  exit 0
fi

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap
  code-generator component-base component-helpers controller-manager cri-api cri-client cri-streaming
  csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver streaming)

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
staging_version="v0.${K8S_VERSION#v1.}"
work="$CACHE_DIR/k8s/$K8S_VERSION/src"
mkdir -p "$work" "$out"
cd "$work"
{
  echo "module registry-kit.local/k8sbuild"
  echo
  echo "go 1.25"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  for m in "${staging[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $staging_version"; done
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# The Go build cache for this grows to ~4 GB; keep it apart so it can be dropped once the binaries exist.
export GOCACHE="$CACHE_DIR/k8s/gocache" CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$SECONDS
for b in "${bins[@]}"; do
  [ -x "$out/$b" ] && continue
  t=$SECONDS
  echo "building $b $K8S_VERSION ..."
  go build -trimpath -ldflags "$ldflags" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$out/$b.tmp" "$out/$b"
  echo "built $b in $((SECONDS - t))s"
done
rm -rf "$CACHE_DIR/k8s/gocache"
echo "kubernetes $K8S_VERSION binaries built in $((SECONDS - start))s into $out"
