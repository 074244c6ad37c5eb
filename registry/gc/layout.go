package gc

import (
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
)

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
