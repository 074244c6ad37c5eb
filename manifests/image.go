package manifests

import (
	"regexp"
	"strings"
)

// ReleaseRepository is where registry-kit releases publish their image, tagged v<version>.
const ReleaseRepository = "ghcr.io/registry-kit/registry-kit"

// releaseVersion matches the versions a release is tagged with (v1.2.3, v1.3.0-rc.1), and not what a development
// build reports: a git describe of an untagged commit (v1.2.3-4-gabcdef0, -dirty), a bare commit hash, a Go
// pseudo-version or "(devel)".
var releaseVersion = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(alpha|beta|rc)(\.[0-9]+)?)?$`)

// ReleaseVersion returns version in its v-prefixed form and whether it is a release version.
func ReleaseVersion(version string) (string, bool) {
	if version != "" && version[0] >= '0' && version[0] <= '9' {
		version = "v" + version
	}
	return version, releaseVersion.MatchString(version)
}

// ImageForVersion is the default --image of a registry-kit binary of this version: the public release image
// ReleaseRepository:v<version> for a release, DefaultImage (a local tag the user builds with make image) for any
// other build.
func ImageForVersion(version string) string {
	if v, ok := ReleaseVersion(strings.TrimSpace(version)); ok {
		return ReleaseRepository + ":" + v
	}
	return DefaultImage
}
