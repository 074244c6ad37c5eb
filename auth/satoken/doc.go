// Package satoken lets pods pull with their own Kubernetes ServiceAccount identity: it verifies the projected
// ServiceAccount tokens the kubelet hands its credential provider (KEP-4412) offline, against the cluster's
// service-account issuer keys (OIDC discovery + JWKS, fetched from the API server and cached), checking signature,
// issuer, audience, expiry and not-before, and wraps the htpasswd access controller so that a token arriving as the
// Basic password of the reserved user Username authenticates as system:serviceaccount:<namespace>:<name>, which the
// access policy (auth/access) then authorises. Every other user is passed to the htpasswd controller unchanged.
package satoken
