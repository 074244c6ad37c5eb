package registry

import (
	"context"
	"fmt"
	"net/http"

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
