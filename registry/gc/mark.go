package gc

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// keep decides which manifests of r stay. Without deleteUntagged every linked manifest stays. With it, the roots are
// the tagged manifests (minus the tags retention removes), the manifests pushed after cutoff and those journaled;
// then children of kept indexes, subjects of kept referrers and referrers of kept manifests join, until nothing
// changes.
func keep(r *repo, manifests map[digest.Digest]*manifestRefs, deleteUntagged bool, removedTags map[string]bool,
	cutoff time.Time, touched map[digest.Digest]bool) map[digest.Digest]bool {
	kept := map[digest.Digest]bool{}
	var queue []digest.Digest
	add := func(d digest.Digest) {
		c := r.resolve(d)
		if !kept[c] {
			kept[c] = true
			queue = append(queue, c)
		}
	}
	for t, tg := range r.tags {
		if !removedTags[t] {
			add(tg.addr)
		}
	}
	for c, rev := range r.revs {
		if !deleteUntagged || !rev.modTime.Before(cutoff) || touched[c] {
			add(c)
			continue
		}
		for _, a := range rev.aliases {
			if touched[a] {
				add(c)
			}
		}
	}
	for {
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			m := manifests[c]
			if m == nil {
				continue
			}
			for _, child := range m.children {
				add(child)
			}
			if m.subject != "" {
				add(m.subject)
			}
		}
		// Referrers (signatures, SBOMs) of a kept manifest are kept with it.
		for c := range r.revs {
			if m := manifests[c]; !kept[c] && m != nil && m.subject != "" && kept[r.resolve(m.subject)] {
				add(c)
			}
		}
		if len(queue) == 0 {
			return kept
		}
	}
}

// mark adds to marked every blob the kept manifests of r need: their own data and what they reference.
func mark(r *repo, manifests map[digest.Digest]*manifestRefs, kept map[digest.Digest]bool, marked map[digest.Digest]bool) {
	for c := range kept {
		marked[c] = true
		m := manifests[c]
		if m == nil {
			continue
		}
		for _, b := range m.blobs {
			marked[r.resolve(b)] = true
			marked[b] = true
		}
		for _, ch := range m.children {
			marked[r.resolve(ch)] = true
		}
	}
}
