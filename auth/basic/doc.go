// Package basic owns registry-kit's distribution access controller for HTTP Basic authentication against an
// htpasswd file. It remembers verified credentials (under a keyed hash, never the password) so logged-in clients cost
// no bcrypt, reloads the file live (including Kubernetes Secret-volume symlink swaps), and throttles failing
// clients and users so a flood of bad passwords cannot starve good ones.
package basic
