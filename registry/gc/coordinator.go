package gc

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrFenced is what Record returns while a sweep runs: the write must be refused (503 with Retry-After) and retried.
var ErrFenced = errors.New("garbage collection sweep in progress")

// RetryAfter is how long a fenced client is told to wait.
const RetryAfter = 5 * time.Second

// JournalKeep is how long journal entries are kept whether or not a collection runs (writes finish well within it
// of journaling: the body is read first). Collections spare what was journaled within min(window, JournalKeep).
const JournalKeep = time.Hour

// localPruneEvery bounds the in-process journal: past this many entries, those older than JournalKeep go.
const localPruneEvery = 4096

// Recorder is what a server calls before it accepts a write that can make an old blob live again (a manifest PUT
// with its references, an upload completion, a cross-repository mount): the digests are journaled first, then the
// fence is checked, in that order, so a write the fence did not stop is always in the journal the sweep reads.
type Recorder interface {
	Record(ctx context.Context, digests []digest.Digest) error
}

// Coordinator is what a collection needs from the servers that write to the same storage.
type Coordinator interface {
	Recorder
	// Lock makes this the only collection running; release ends it.
	Lock(ctx context.Context) (release func(), err error)
	// Fence refuses writes (Record returns ErrFenced) until Unfence. On return every server sees it.
	Fence(ctx context.Context) error
	Unfence(ctx context.Context) error
	// Touched returns the digests journaled at or after since, and forgets older entries.
	Touched(ctx context.Context, since time.Time) (map[digest.Digest]bool, error)
	// Forget drops what the sweep deleted from every blob descriptor cache.
	Forget(ctx context.Context, deleted Deleted) error
}

// Deleted is what a sweep removed, for the caches to forget.
type Deleted struct {
	Blobs []digest.Digest            // blob data
	Links map[string][]digest.Digest // repository -> layer and manifest links
}

// Local coordinates a collection with the one server in this process (the filesystem, or a single replica).
type Local struct {
	mu      sync.Mutex
	journal map[digest.Digest]time.Time
	fenced  bool
	gcMu    sync.Mutex
	forget  func(context.Context, Deleted) error
	now     func() time.Time
}

var _ Coordinator = (*Local)(nil)

// NewLocal returns a Local whose Forget calls forget (nil: nothing to forget).
func NewLocal(forget func(context.Context, Deleted) error) *Local {
	return &Local{journal: map[digest.Digest]time.Time{}, forget: forget, now: time.Now}
}

func (l *Local) Record(_ context.Context, digests []digest.Digest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, d := range digests {
		l.journal[d] = now
	}
	if len(l.journal) > localPruneEvery {
		for d, t := range l.journal {
			if now.Sub(t) > JournalKeep {
				delete(l.journal, d)
			}
		}
	}
	if l.fenced {
		return ErrFenced
	}
	return nil
}

func (l *Local) Lock(ctx context.Context) (func(), error) {
	for !l.gcMu.TryLock() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return l.gcMu.Unlock, nil
}

func (l *Local) Fence(context.Context) error { l.setFence(true); return nil }

func (l *Local) Unfence(context.Context) error { l.setFence(false); return nil }

func (l *Local) setFence(on bool) {
	l.mu.Lock()
	l.fenced = on
	l.mu.Unlock()
}

func (l *Local) Touched(_ context.Context, since time.Time) (map[digest.Digest]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[digest.Digest]bool{}
	for d, t := range l.journal {
		if t.Before(since) {
			delete(l.journal, d)
			continue
		}
		out[d] = true
	}
	return out, nil
}

func (l *Local) Forget(ctx context.Context, d Deleted) error {
	if l.forget == nil {
		return nil
	}
	return l.forget(ctx, d)
}

// offline is the coordinator of a collection no server watches: the store must not be written meanwhile.
type offline struct{}

func (offline) Record(context.Context, []digest.Digest) error { return nil }
func (offline) Lock(context.Context) (func(), error)          { return func() {}, nil }
func (offline) Fence(context.Context) error                   { return nil }
func (offline) Unfence(context.Context) error                 { return nil }
func (offline) Forget(context.Context, Deleted) error         { return nil }
func (offline) Touched(context.Context, time.Time) (map[digest.Digest]bool, error) {
	return map[digest.Digest]bool{}, nil
}
