// Package access owns registry-kit's access policy: which authenticated user may pull, push or delete which
// repositories. It parses the policy YAML (errors name the line), matches repository patterns ("**", "team-a/*",
// "team-a/**"), maps a registry request to distribution's access records, reloads the policy file live keeping the
// last good one, and wraps an authenticating access controller so an authenticated but unauthorised request is
// denied (403 DENIED) rather than challenged (401).
package access
