package registry

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	"github.com/registry-kit/registry-kit/registry/oci"
)

// withOCI puts the OCI 1.1 additions distribution v3.1.2 lacks (referrers API, OCI-Subject, sha512 addresses, tag
// parameters; see package oci) in front of next, over a storage driver of its own for the same storage.
func (s *Server) withOCI(backend storageBackend, next http.Handler) (http.Handler, error) {
	d, err := factory.Create(context.Background(), backend.name, backend.params)
	if err != nil {
		return nil, fmt.Errorf("configuring storage %s for the referrers API: %w", s.cfg.Storage, err)
	}
	h, err := oci.New(next, oci.Options{Driver: d, Access: s.ac, Logger: s.logger})
	if err != nil {
		return nil, err
	}
	s.oci = h
	return h, nil
}

// startBackfill records, in the background, the referrers older clients pushed as fallback tags (oci.Backfill). The
// returned channel is closed when it has finished or ctx was cancelled.
func (s *Server) startBackfill(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s.oci == nil {
			return
		}
		start := time.Now()
		st, err := s.oci.Backfill(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Error("backfilling referrers from fallback tags", "err", err)
			}
			return
		}
		s.logger.Info("referrers backfilled from fallback tags", "repositories", st.Repositories,
			"fallback_tags", st.FallbackTags, "edges_written", st.Edges, "took", time.Since(start).Round(time.Millisecond).String())
	}()
	return done
}
