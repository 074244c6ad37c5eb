#!/usr/bin/env bash
# Builds the images the local test cluster needs without pulling anything: the pod sandbox (pause), the small
# test app, and registry-kit itself, each a static Go binary in a single-layer image with no base.
# Usage: build.sh OUT_DIR
# Writes for each NAME in pause, test-app, registry-kit: OUT_DIR/NAME.tar (OCI archive for `ctr images import`),
# OUT_DIR/NAME-layout/ (OCI image layout, e.g. skopeo oci:DIR), OUT_DIR/NAME.docker.tar (docker load), and
# OUT_DIR/images.env with PAUSE_IMAGE, TEST_APP_IMAGE, REGISTRY_KIT_IMAGE (+ _DIGEST) to source.
# test-app and registry-kit also get OUT_DIR/NAME-node.tar, the copy up.sh imports into the node: the same binary
# with a label, hence another image ID. The kubelet (KubeletEnsureSecretPulledImages) remembers which credentials
# pulled an image ID; if tests pushed and pulled the very image the node has preloaded, pods using the preloaded
# name without credentials would then get ErrImageNeverPull / a re-pull. The label keeps the two apart.
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
PAUSE_IMAGE=${PAUSE_IMAGE:-registry-kit.local/pause:3.10}
TEST_APP_IMAGE=${TEST_APP_IMAGE:-registry-kit.local/test-app:v1}
REGISTRY_KIT_IMAGE=${REGISTRY_KIT_IMAGE:-registry-kit.local/registry-kit:dev}

mkdir -p "$out/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
cd "$repo"
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/bin/mkimage" ./scripts/cluster/images/mkimage
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/bin/pause" ./scripts/cluster/images/pause
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/bin/test-app" ./scripts/cluster/images/testapp

image() { # image NAME BINARY PATH_IN_IMAGE REF -> prints the digest
  "$out/bin/mkimage" -bin "$2" -path "$3" -ref "$4" -layout "$out/$1-layout" \
    -oci-archive "$out/$1.tar" -docker-tar "$out/$1.docker.tar" | sed 's/.*@//'
}
node_image() { # node_image NAME BINARY PATH_IN_IMAGE REF: the labelled copy for the node
  "$out/bin/mkimage" -bin "$2" -path "$3" -ref "$4" -layout "$out/.$1-node-layout" -oci-archive "$out/$1-node.tar" \
    -label registry-kit.dev/preloaded=true > /dev/null
  rm -rf "$out/.$1-node-layout"
}
{
  echo "PAUSE_IMAGE=$PAUSE_IMAGE"
  echo "PAUSE_IMAGE_DIGEST=$(image pause "$out/bin/pause" /pause "$PAUSE_IMAGE")"
  echo "TEST_APP_IMAGE=$TEST_APP_IMAGE"
  echo "TEST_APP_IMAGE_DIGEST=$(image test-app "$out/bin/test-app" /test-app "$TEST_APP_IMAGE")"
} > "$out/images.env.tmp"
node_image test-app "$out/bin/test-app" /test-app "$TEST_APP_IMAGE"

# registry-kit itself, from the working tree; a tree that does not build yet must not stop the cluster.
version=$(git describe --tags --always --dirty 2> /dev/null || echo dev)
if go build -trimpath -ldflags "-s -w -X github.com/registry-kit/registry-kit/cmd/cli.Version=$version" -o "$out/bin/registry-kit" ./cmd/registry-kit 2> "$out/registry-kit-build.log"; then
  {
    echo "REGISTRY_KIT_IMAGE=$REGISTRY_KIT_IMAGE"
    echo "REGISTRY_KIT_IMAGE_DIGEST=$(image registry-kit "$out/bin/registry-kit" /registry-kit "$REGISTRY_KIT_IMAGE")"
  } >> "$out/images.env.tmp"
  node_image registry-kit "$out/bin/registry-kit" /registry-kit "$REGISTRY_KIT_IMAGE"
else
  echo "WARNING: ./cmd/registry-kit does not build; no registry-kit image (see $out/registry-kit-build.log)" >&2
  rm -f "$out/registry-kit.tar" "$out/registry-kit-node.tar"
fi
mv "$out/images.env.tmp" "$out/images.env"
cat "$out/images.env"
