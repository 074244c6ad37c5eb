// Package gc collects the garbage of a registry-kit store while it serves: blobs no manifest references, manifests
// untagged for longer than a window (opt-in), tags that retention rules no longer keep, and abandoned uploads. It also
// checks a store for damage (Fsck) without changing it.
//
// Safety while serving comes from construction, not timing: blob data newer than the grace window is never a
// candidate; the mark reads manifests straight from the storage driver, with no cache; the digests that servers
// journal on every write (Coordinator) since the mark began are spared; writes are fenced only for the sweep; and the
// blob descriptor cache forgets what the sweep deleted before the fence lifts.
package gc
