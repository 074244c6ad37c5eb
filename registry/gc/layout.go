package gc

import (
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The storage layout of distribution (registry/storage/paths.go) and of registry/oci's sha512 aliases and referrer
// edges, as far as the collector reads and deletes it.
const (
	storageRoot = "/docker/registry/v2"
	reposRoot   = storageRoot + "/repositories"
	blobsRoot   = storageRoot + "/blobs"
)

func repoPath(name string) string { return path.Join(reposRoot, name) }

func revisionsDir(name string) string { return path.Join(repoPath(name), "_manifests", "revisions") }

func revisionLinkPath(name string, d digest.Digest) string {
	return path.Join(revisionsDir(name), d.Algorithm().String(), d.Encoded(), "link")
}

func tagsDir(name string) string { return path.Join(repoPath(name), "_manifests", "tags") }

func tagCurrentLink(name, tag string) string { return path.Join(tagsDir(name), tag, "current", "link") }

func tagDir(name, tag string) string { return path.Join(tagsDir(name), tag) }

func layersDir(name string) string { return path.Join(repoPath(name), "_layers") }

func layerLinkPath(name string, d digest.Digest) string {
	return path.Join(layersDir(name), d.Algorithm().String(), d.Encoded(), "link")
}

func blobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(blobsRoot, d.Algorithm().String(), hex[:2], hex, "data")
}

// edgePath is registry/oci's record that referrer's subject is subject.
func edgePath(name string, subject, referrer digest.Digest) string {
	return path.Join(repoPath(name), "_referrers", subject.Algorithm().String(), subject.Encoded(),
		referrer.Algorithm().String()+"-"+referrer.Encoded())
}

// linkAddr parses the digest a ".../<alg>/<hex>/link" path is named for.
func linkAddr(p string) (digest.Digest, bool) {
	dir, file := path.Split(p)
	if file != "link" {
		return "", false
	}
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	if len(parts) < 2 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[len(parts)-2]), parts[len(parts)-1])
	return d, d.Validate() == nil
}

// blobAddr parses the digest of a ".../blobs/<alg>/<xx>/<hex>/data" path.
func blobAddr(p string) (digest.Digest, bool) {
	dir, file := path.Split(p)
	if file != "data" {
		return "", false
	}
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	if len(parts) < 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[len(parts)-3]), parts[len(parts)-1])
	return d, d.Validate() == nil
}
