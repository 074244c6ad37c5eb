package manifests

import "testing"

func TestImageForVersion(t *testing.T) {
	for _, tc := range []struct {
		name, version, want string
	}{
		{name: "release", version: "v1.2.3", want: "ghcr.io/registry-kit/registry-kit:v1.2.3"},
		{name: "release without v", version: "0.4.0", want: "ghcr.io/registry-kit/registry-kit:v0.4.0"},
		{name: "release candidate", version: "v1.3.0-rc.1", want: "ghcr.io/registry-kit/registry-kit:v1.3.0-rc.1"},
		{name: "git describe past a tag", version: "v1.2.3-4-gabcdef0", want: DefaultImage},
		{name: "dirty tree", version: "v1.2.3-dirty", want: DefaultImage},
		{name: "untagged commit", version: "a47ce51", want: DefaultImage},
		{name: "untagged dirty commit", version: "a47ce51-dirty", want: DefaultImage},
		{name: "go pseudo-version", version: "v0.0.0-20261202132808-a47ce51c0ffe", want: DefaultImage},
		{name: "devel", version: "(devel)", want: DefaultImage},
		{name: "empty", version: "", want: DefaultImage},
		{name: "leading zero", version: "v01.2.3", want: DefaultImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ImageForVersion(tc.version); got != tc.want {
				t.Errorf("ImageForVersion(%q) = %q, want %q", tc.version, got, tc.want)
			}
		})
	}
}
