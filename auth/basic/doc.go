// Package basic owns registry-kit's distribution access controller for HTTP Basic authentication against an
// htpasswd file. It remembers verified credentials (under a keyed hash, never the password) for as long as they are
// used, up to a maximum age, and keeps them across reloads that leave the user's hash unchanged; it reloads the file
// live (including Kubernetes Secret-volume symlink swaps), applying the lines that parse and refusing everyone while
// the file is missing; and it throttles failures per client address and per user from that address, so a flood of
// bad passwords can neither starve good clients nor lock a user out.
package basic
