// Package image builds registry-kit's own container image in process with go-containerregistry: no Docker engine
// and no base image, one static binary per platform on a shared layer of the files a non-root scratch image needs
// (passwd, group, the CA bundle, the data directory). The build is reproducible: the same binaries and inputs give
// the same index digest. It writes the multi-arch index as an OCI layout and an OCI archive, and pushes it.
//
// It lives under internal/ because it is the release machinery of this repository (cmd/cli and the e2e tests use
// it), not an API for other modules.
package image
