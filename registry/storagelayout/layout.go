// Package storagelayout names the paths of distribution's storage layout (its registry/storage/paths.go) that
// registry-kit reads and writes behind distribution's API: repository links, blob data, and the _referrers edges
// registry/oci owns. distribution's catalog and garbage collector skip directories starting with "_" they do not know.
package storagelayout

import (
	"path"

	"github.com/opencontainers/go-digest"
)

const (
	// Root is the top of the layout in the storage driver.
	Root = "/docker/registry/v2"
	// Repositories holds one directory per repository name.
	Repositories = Root + "/repositories"
	// Blobs holds the content of every blob, by canonical digest.
	Blobs = Root + "/blobs"
)

// Repo is the directory of repository name.
func Repo(name string) string { return path.Join(Repositories, name) }

// RevisionsDir holds the links of the manifests of a repository.
func RevisionsDir(name string) string { return path.Join(Repo(name), "_manifests", "revisions") }

// RevisionLink is the link that makes a manifest digest part of a repository.
func RevisionLink(name string, d digest.Digest) string {
	return path.Join(RevisionsDir(name), d.Algorithm().String(), d.Encoded(), "link")
}

// TagsDir holds one directory per tag of a repository.
func TagsDir(name string) string { return path.Join(Repo(name), "_manifests", "tags") }

// TagDir is the directory of one tag (its current link and its index).
func TagDir(name, tag string) string { return path.Join(TagsDir(name), tag) }

// TagCurrentLink is the link to the manifest a tag names now.
func TagCurrentLink(name, tag string) string { return path.Join(TagDir(name, tag), "current", "link") }

// LayersDir holds the links of the blobs of a repository.
func LayersDir(name string) string { return path.Join(Repo(name), "_layers") }

// LayerLink is the link that makes a blob digest part of a repository.
func LayerLink(name string, d digest.Digest) string {
	return path.Join(LayersDir(name), d.Algorithm().String(), d.Encoded(), "link")
}

// BlobData is where the content of a canonical digest lives.
func BlobData(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(Blobs, d.Algorithm().String(), hex[:2], hex, "data")
}

// EdgeDir holds one object per manifest of repository name whose subject is subject.
func EdgeDir(name string, subject digest.Digest) string {
	return path.Join(Repo(name), "_referrers", subject.Algorithm().String(), subject.Encoded())
}

// Edge is the record that referrer's subject is subject.
func Edge(name string, subject, referrer digest.Digest) string {
	return path.Join(EdgeDir(name, subject), referrer.Algorithm().String()+"-"+referrer.Encoded())
}
