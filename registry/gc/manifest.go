package gc

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// manifestRefs is what the collector needs of a stored manifest: the blobs it references (config and layers; for an
// index, its child manifests) and its subject. It reads every format distribution stores (Docker schema 2 manifest
// and list, OCI manifest and index) with one lenient structure: fields a format lacks stay empty.
type manifestRefs struct {
	blobs    []digest.Digest // config, layers, and the blobs of an artifact manifest
	children []digest.Digest // manifests of an index or list
	subject  digest.Digest
	// sizes are the descriptor sizes of blobs and children, for Fsck.
	sizes map[digest.Digest]int64
}

type descriptorJSON struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

func parseManifest(body []byte) (manifestRefs, error) {
	var m struct {
		Config    *descriptorJSON  `json:"config"`
		Layers    []descriptorJSON `json:"layers"`
		Blobs     []descriptorJSON `json:"blobs"`
		Manifests []descriptorJSON `json:"manifests"`
		Subject   *descriptorJSON  `json:"subject"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return manifestRefs{}, fmt.Errorf("parsing manifest: %w", err)
	}
	r := manifestRefs{sizes: map[digest.Digest]int64{}}
	add := func(list *[]digest.Digest, d descriptorJSON) error {
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("manifest references invalid digest %q: %w", d.Digest, err)
		}
		*list = append(*list, d.Digest)
		r.sizes[d.Digest] = d.Size
		return nil
	}
	if m.Config != nil && m.Config.Digest != "" {
		if err := add(&r.blobs, *m.Config); err != nil {
			return manifestRefs{}, err
		}
	}
	for _, l := range append(m.Layers, m.Blobs...) {
		if err := add(&r.blobs, l); err != nil {
			return manifestRefs{}, err
		}
	}
	for _, c := range m.Manifests {
		if err := add(&r.children, c); err != nil {
			return manifestRefs{}, err
		}
	}
	if m.Subject != nil && m.Subject.Digest != "" {
		if err := m.Subject.Digest.Validate(); err != nil {
			return manifestRefs{}, fmt.Errorf("manifest subject %q: %w", m.Subject.Digest, err)
		}
		r.subject = m.Subject.Digest
	}
	return r, nil
}

// References lists every digest a manifest body names (config, layers, blobs, children, subject): what a server
// journals when it accepts the manifest. An unparsable body yields nothing (distribution will refuse it anyway).
func References(body []byte) []digest.Digest {
	r, err := parseManifest(body)
	if err != nil {
		return nil
	}
	out := append(append([]digest.Digest{}, r.blobs...), r.children...)
	if r.subject != "" {
		out = append(out, r.subject)
	}
	return out
}
