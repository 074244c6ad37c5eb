#!/usr/bin/env bash
# Builds everything a registry-kit release publishes into $DIST (default dist/): static binaries for linux/amd64 and
# linux/arm64, the multi-arch image (in process, no Docker engine: an OCI layout and an OCI archive), the Helm chart,
# an SPDX SBOM per binary (from the build information Go embeds, as `go version -m` shows it) and sha256 checksums.
# Every timestamp is SOURCE_DATE_EPOCH (default: the last commit's time), so a rebuild of the same tree is identical.
#
#   scripts/release.sh --dry-run     # build and verify locally, publish nothing (make release-dry-run)
#   scripts/release.sh               # the same, then push the image to ghcr.io/registry-kit/registry-kit:$VERSION
set -euo pipefail

cd "$(dirname "$0")/.."
DRY_RUN=false
case "${1:-}" in
  --dry-run) DRY_RUN=true ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
DIST=${DIST:-dist}
PLATFORMS=(linux/amd64 linux/arm64)
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/registry-kit/registry-kit}
LDFLAGS="-s -w -X github.com/registry-kit/registry-kit/cmd/cli.Version=$VERSION -X github.com/registry-kit/registry-kit/cmd/cli.Commit=$REVISION"

if ! $DRY_RUN && ! [[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-(alpha|beta|rc)(\.[0-9]+)?)?$ ]]; then
  echo "release: $VERSION is not a release version (vX.Y.Z): tag the commit, or use --dry-run" >&2
  exit 1
fi

echo "release: registry-kit $VERSION ($REVISION) into $DIST$($DRY_RUN && echo ', dry run: nothing is published')"
rm -rf "$DIST"
mkdir -p "$DIST"

binaries=()
for p in "${PLATFORMS[@]}"; do
  os=${p%/*} arch=${p#*/}
  out="$DIST/registry-kit-$VERSION-$os-$arch"
  echo "release: building $out"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$LDFLAGS" -o "$out" ./cmd/registry-kit
  binaries+=("--binary" "$p=$out")
done

# The host's own binary runs the image build and the chart generation.
host="$DIST/registry-kit-$VERSION-$(go env GOOS)-$(go env GOARCH)"
[ -x "$host" ] || { echo "release: no binary for this host's platform $(go env GOOS)/$(go env GOARCH)" >&2; exit 1; }

tag="$IMAGE_REPO:$VERSION"
"$host" image build "${binaries[@]}" --platform "$(IFS=,; echo "${PLATFORMS[*]}")" --version "$VERSION" --revision "$REVISION" \
  --tag "$tag" --oci-layout "$DIST/image" --archive "$DIST/registry-kit-$VERSION-image.tar"

"$host" generate --helm-chart "$DIST/chart/registry-kit"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$DIST/chart" -cf - registry-kit |
  gzip -9n > "$DIST/registry-kit-chart-$VERSION.tgz"
rm -rf "$DIST/chart"

for b in "$DIST"/registry-kit-"$VERSION"-linux-*; do
  case "$b" in *.tar|*.tgz|*.json) continue ;; esac
  go run ./scripts/sbom "$b" > "$b.spdx.json"
done

(cd "$DIST" && find . -maxdepth 1 -type f ! -name checksums.txt -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > checksums.txt)
(cd "$DIST" && sha256sum --check --quiet checksums.txt)
echo "release: artifacts"
(cd "$DIST" && ls -l --time-style=+ $(cut -d' ' -f3 checksums.txt) checksums.txt | awk '{print "  " $5 "\t" $NF}')

if $DRY_RUN; then
  echo "release: dry run done; would push $tag and publish the files above"
  exit 0
fi
"$host" image push --oci-layout "$DIST/image" "$tag"
echo "release: pushed $tag; publish the files in $DIST with the release"
