package basic

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// fileSig identifies one version of the file behind a path, after following symlinks.
type fileSig struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func statFile(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	sig := fileSig{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.dev, sig.ino = uint64(st.Dev), st.Ino
	}
	return sig, nil
}

// watch reloads the file when it changes. fsnotify events on the file's directory (and on the directory of the
// file it resolves to) trigger a check quickly; a periodic stat catches whatever inotify misses, such as the
// symlink swaps of a Kubernetes Secret volume on some filesystems.
func (c *Controller) watch(ctx context.Context) {
	defer close(c.done)
	var w *fsnotify.Watcher
	var err error
	if !c.opts.disableNotify {
		w, err = fsnotify.NewWatcher()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if err != nil {
		c.log.Warn("watching htpasswd file with fsnotify; falling back to polling", "path", c.opts.Path, "err", err)
		w = nil
	}
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	watched := map[string]bool{}
	rewatch := func() {
		if w == nil {
			return
		}
		want := map[string]bool{filepath.Dir(c.opts.Path): true}
		if resolved, err := filepath.EvalSymlinks(c.opts.Path); err == nil {
			want[filepath.Dir(resolved)] = true
		}
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
		for d := range want {
			if !watched[d] && w.Add(d) == nil {
				watched[d] = true
			}
		}
	}
	rewatch()

	poll := time.NewTicker(c.opts.PollInterval)
	defer poll.Stop()
	// Events come in bursts (create temp, write, rename): check once the burst has settled.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			settle.Reset(20 * time.Millisecond)
		case err := <-errs:
			c.log.Warn("watching htpasswd file", "path", c.opts.Path, "err", err)
		case <-settle.C:
			if retry := c.reloadIfChanged(time.Now()); retry > 0 {
				settle.Reset(retry)
			}
			rewatch()
		case <-poll.C:
			if retry := c.reloadIfChanged(time.Now()); retry > 0 {
				settle.Reset(retry)
			}
			rewatch()
		}
	}
}

// quietPeriod is how long a file rewritten in place (same inode: truncated, then written) must stay unchanged before
// it is loaded; otherwise it could be caught half-written, and a half-written file can parse cleanly with users
// missing. A file replaced by rename (atomic writers, Kubernetes Secret volumes) is complete and loads at once.
const quietPeriod = 200 * time.Millisecond

// reloadIfChanged reloads the file if its signature differs from the one last loaded or tried. It returns a delay
// after which to look again when the file may still be being written.
func (c *Controller) reloadIfChanged(now time.Time) (retry time.Duration) {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	sig, err := statFile(c.opts.Path)
	if err != nil {
		sig = fileSig{} // missing: retry when it reappears
	}
	cur := c.state.Load()
	if sig == cur.sig {
		return 0
	}
	if err == nil && sig.ino != 0 && sig.dev == cur.sig.dev && sig.ino == cur.sig.ino {
		// Rewritten in place: wait until it has been seen unchanged for the quiet period. File timestamps cannot
		// tell, as a stat racing a truncate can see the new size with the old mtime.
		if sig != c.pending {
			c.pending, c.pendingSince = sig, now
			return c.opts.quiet
		}
		if wait := c.opts.quiet - now.Sub(c.pendingSince); wait > 0 {
			return wait
		}
	}
	f, err := htpasswd.Load(c.opts.Path)
	if after, _ := statFile(c.opts.Path); after != sig {
		return c.opts.quiet // changed while being read: look again
	}
	if err != nil {
		// Remember the failed signature so one bad version is logged once, not at every poll.
		c.state.Store(&fileState{file: cur.file, gen: cur.gen, sig: sig})
		c.metrics.reloadFailed.Inc()
		c.log.Error("reloading htpasswd file; keeping the previous users", "path", c.opts.Path, "err", err)
		return 0
	}
	next := &fileState{file: f, gen: cur.gen + 1, sig: sig}
	// Reset the cache to the new generation first: a verification against the old file finishing after this
	// point cannot be remembered, and none remembered before survives.
	c.cache.reset(next.gen)
	c.state.Store(next)
	c.metrics.reloadOK.Inc()
	c.log.Info("reloaded htpasswd file", "path", c.opts.Path, "users", len(f.Users()))
	return 0
}
