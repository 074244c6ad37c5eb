// Package oci adds to the embedded distribution v3.1.2 the parts of the OCI distribution-spec 1.1 it lacks: the
// referrers API (GET /v2/<name>/referrers/<digest>) and the OCI-Subject header, sha512 content addresses for blobs and
// manifests, and tag parameters on manifest PUT (?tag=...). It is an http.Handler in front of distribution's App that
// answers what distribution cannot and passes everything else through after distribution's own authorization.
//
// Referrer edges are stored through the storage driver as one write-once object per (subject, referrer) pair under
// the repository's _referrers directory, so several replicas on one bucket never read-modify-write a shared index.
// sha512 addresses are alias links to the sha256 content distribution stores, the scheme distribution itself uses for
// blob uploads with a non-canonical digest.
package oci
