package gc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"
)

// DefaultWindow is the grace window: blob data and manifests newer than this are never collected (Harbor's value).
const DefaultWindow = 2 * time.Hour

// Options say what a collection does.
type Options struct {
	// Window is the grace window. Blob data whose modification time is within it is never deleted, nor a manifest
	// pushed within it; the journal is read back as far. 0 means no window: only for a store nothing writes to.
	Window time.Duration
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// DeleteUntagged deletes manifests no tag reaches, unless they are a child of a kept index, the subject of a
	// kept referrer, or a referrer of a kept manifest.
	DeleteUntagged bool
	// Retention removes the tags its rules do not keep (none: every tag is kept).
	Retention Policy
	// UploadAge removes unfinished uploads started longer ago than this (0: uploads are left alone).
	UploadAge time.Duration
	// Coordinator connects the collection with the servers writing to the store; nil means none does.
	Coordinator Coordinator
	// Logger gets one line per run and warnings; nil discards.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Validate checks o and names the field that is wrong.
func (o Options) Validate() error {
	var errs []error
	if o.Window < 0 {
		errs = append(errs, fmt.Errorf("window: must not be negative, got %s", o.Window))
	}
	if o.UploadAge < 0 {
		errs = append(errs, fmt.Errorf("upload age: must not be negative, got %s", o.UploadAge))
	}
	if err := o.Retention.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Coordinator == nil {
		o.Coordinator = offline{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Blob is a blob the collection deleted (or would delete).
type Blob struct {
	Digest digest.Digest
	Size   int64
}

// Manifest is a manifest in a repository.
type Manifest struct {
	Repository string
	Digest     digest.Digest
}

// TagRemoval is a tag retention removed (or would remove), with the rules that matched its repository and did not
// keep it.
type TagRemoval struct {
	Repository, Tag string
	Digest          digest.Digest
	Rules           []string
}

// Report says what a collection found and did.
type Report struct {
	Started time.Time
	Took    time.Duration
	DryRun  bool

	Repositories, Manifests, Tags int
	// Marked is the number of blobs (manifests included) found referenced.
	Marked int
	// Blobs are the blobs deleted (or that would be), Bytes their total size.
	Blobs []Blob
	Bytes int64
	// Untagged are the manifests deleted by DeleteUntagged.
	Untagged []Manifest
	// RemovedTags are the tags retention removed.
	RemovedTags []TagRemoval
	// Links is the number of repository links to deleted blobs removed with them.
	Links int
	// Uploads are the abandoned upload directories removed.
	Uploads int
	// SparedByWindow and SparedByJournal count unreferenced blobs kept because they are new or were touched while
	// the collection ran.
	SparedByWindow, SparedByJournal int
	// StorageBytes is the size of all blob data left.
	StorageBytes int64
	// Fenced is how long writes were refused.
	Fenced time.Duration
	// Damaged lists manifests the mark could not read (see Fsck); their references are unknown.
	Damaged []string
	// Errors counts deletions that failed (the run's error joins them).
	Errors int
}
