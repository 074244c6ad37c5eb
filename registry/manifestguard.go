package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/opencontainers/go-digest"
)

// maxManifestBody is distribution's limit on a manifest PUT body; larger bodies are left to distribution to refuse.
const maxManifestBody = 4 << 20

// descriptorRefs are the descriptor-holding fields of the manifest kinds distribution accepts (OCI and Docker image
// manifests and indexes, OCI artifact manifests with a subject).
type descriptorRefs struct {
	Config    *struct{ Digest string }  `json:"config"`
	Subject   *struct{ Digest string }  `json:"subject"`
	Layers    []struct{ Digest string } `json:"layers"`
	Manifests []struct{ Digest string } `json:"manifests"`
	Blobs     []struct{ Digest string } `json:"blobs"`
}

// checkManifestDigests answers a manifest PUT that names a malformed digest (sha256:xyz, md5:..., sha512:abc) with
// 400 DIGEST_INVALID; distribution answers some of them with 500. It reads at most maxManifestBody bytes and hands
// distribution the same body. It reports whether the request may go on.
func checkManifestDigests(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBody+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil || len(buf) > maxManifestBody {
		return true // distribution reports the read error or the size
	}
	var m descriptorRefs
	if json.Unmarshal(buf, &m) != nil {
		return true // not JSON, or not this shape: distribution says MANIFEST_INVALID
	}
	var refs []string
	for _, d := range []*struct{ Digest string }{m.Config, m.Subject} {
		if d != nil {
			refs = append(refs, d.Digest)
		}
	}
	for _, list := range [][]struct{ Digest string }{m.Layers, m.Manifests, m.Blobs} {
		for _, d := range list {
			refs = append(refs, d.Digest)
		}
	}
	for _, ref := range refs {
		if err := digest.Digest(ref).Validate(); err != nil {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeDigestInvalid.WithDetail(map[string]string{
				"digest": ref, "reason": err.Error()}))
			return false
		}
	}
	return true
}
