package oci

import (
	"path"

	"github.com/opencontainers/go-digest"
)

// The storage layout below mirrors distribution's (registry/storage/paths.go), plus the _referrers directory of
// edges this package owns. distribution's catalog and garbage collector skip directories starting with "_" that they
// do not know.
const storageRoot = "/docker/registry/v2"

func repoPath(name string) string { return path.Join(storageRoot, "repositories", name) }

// revisionLinkPath is the link that makes a manifest digest part of a repository.
func revisionLinkPath(name string, d digest.Digest) string {
	return path.Join(repoPath(name), "_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
}

// layerLinkPath is the link that makes a blob digest part of a repository.
func layerLinkPath(name string, d digest.Digest) string {
	return path.Join(repoPath(name), "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

// blobDataPath is where the content of a canonical digest lives.
func blobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(storageRoot, "blobs", d.Algorithm().String(), hex[:2], hex, "data")
}

// edgeDir holds one object per manifest whose subject is subject.
func edgeDir(name string, subject digest.Digest) string {
	return path.Join(repoPath(name), "_referrers", subject.Algorithm().String(), subject.Encoded())
}

func edgePath(name string, subject, referrer digest.Digest) string {
	return path.Join(edgeDir(name, subject), referrer.Algorithm().String()+"-"+referrer.Encoded())
}
