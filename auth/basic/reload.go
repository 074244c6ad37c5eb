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
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ctime: a chmod that makes an unreadable file readable changes nothing else
}

func statFile(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	sig := fileSig{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.dev, sig.ino, sig.ctime = uint64(st.Dev), st.Ino, st.Ctim.Nano()
	}
	return sig, nil
}

// dirWatcher is the fsnotify watch of the file's directory (and of the directory of the file it resolves to); a nil
// watcher means polling alone.
type dirWatcher struct {
	w       *fsnotify.Watcher
	watched map[string]bool
}

// newDirWatcher starts watching before New returns, so that no change made after New is missed: started from the
// watch goroutine, the watch could begin after a quick first edit, which then waited for the next poll.
func (c *Controller) newDirWatcher() *dirWatcher {
	d := &dirWatcher{watched: map[string]bool{}}
	if c.opts.disableNotify {
		return d
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		c.log.Warn("watching htpasswd file with fsnotify; falling back to polling", "path", c.opts.Path, "err", err)
		return d
	}
	d.w = w
	d.rewatch(c.opts.Path)
	return d
}

// rewatch follows path to the directories to watch now (a Secret volume's symlink may point elsewhere).
func (d *dirWatcher) rewatch(path string) {
	if d.w == nil {
		return
	}
	want := map[string]bool{filepath.Dir(path): true}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		want[filepath.Dir(resolved)] = true
	}
	for dir := range d.watched {
		if !want[dir] {
			_ = d.w.Remove(dir)
			delete(d.watched, dir)
		}
	}
	for dir := range want {
		if !d.watched[dir] && d.w.Add(dir) == nil {
			d.watched[dir] = true
		}
	}
}

// watch reloads the file when it changes. fsnotify events on the watched directories trigger a check quickly; a
// periodic stat catches whatever inotify misses, such as the symlink swaps of a Kubernetes Secret volume on some
// filesystems.
func (c *Controller) watch(ctx context.Context, d *dirWatcher) {
	defer close(c.done)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if d.w != nil {
		defer d.w.Close()
		events, errs = d.w.Events, d.w.Errors
	}
	rewatch := func() { d.rewatch(c.opts.Path) }

	poll := time.NewTicker(c.opts.PollInterval)
	defer poll.Stop()
	// Events come in bursts (create temp, write, rename): check once the burst has settled.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	// A change between New's load and the start of the watch raised no event: look once now.
	if retry := c.reloadIfChanged(c.now()); retry > 0 {
		settle.Reset(retry)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			settle.Reset(20 * time.Millisecond)
		case err := <-errs:
			c.log.Warn("watching htpasswd file", "path", c.opts.Path, "err", err)
		case <-settle.C:
			if retry := c.reloadIfChanged(c.now()); retry > 0 {
				settle.Reset(retry)
			}
			rewatch()
		case <-poll.C:
			if retry := c.reloadIfChanged(c.now()); retry > 0 {
				settle.Reset(retry)
			}
			rewatch()
		}
	}
}

// quietPeriod is how long a file rewritten in place (same inode: truncated, then written) must stay unchanged before
// it is loaded; otherwise it could be caught half-written, and a half-written file can parse cleanly with users
// missing. A file replaced by rename (atomic writers, Kubernetes Secret volumes) is complete and loads at once. A file
// that disappears must stay gone as long before everyone is refused, so a delete-and-recreate does not flap.
const quietPeriod = 200 * time.Millisecond

// reloadIfChanged reloads the file if its signature differs from the one last loaded or tried. It returns a delay
// after which to look again when the file may still be being written. Whatever the new version holds is what counts:
// its good lines are applied and each bad one is reported (never the old file kept whole, which would keep a removed
// user in); a missing or unreadable file refuses every user until it can be read again.
func (c *Controller) reloadIfChanged(now time.Time) (retry time.Duration) {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	sig, statErr := statFile(c.opts.Path)
	if statErr != nil {
		sig = fileSig{} // missing: retry when it reappears
	}
	cur := c.state.Load()
	if sig == cur.sig {
		c.pending = nil
		return 0
	}
	inPlace := statErr == nil && sig.ino != 0 && sig.dev == cur.sig.dev && sig.ino == cur.sig.ino
	if inPlace || statErr != nil {
		// Wait until it has been seen unchanged for the quiet period. File timestamps cannot tell, as a stat racing
		// a truncate can see the new size with the old mtime.
		if c.pending == nil || sig != *c.pending {
			c.pending, c.pendingSince = &sig, now
			return c.opts.quiet
		}
		if wait := c.opts.quiet - now.Sub(c.pendingSince); wait > 0 {
			return wait
		}
	}
	c.pending = nil
	f, skipped, err := htpasswd.LoadLenient(c.opts.Path)
	if after, _ := statFile(c.opts.Path); after != sig {
		return c.opts.quiet // changed while being read: look again
	}
	if err != nil {
		c.refuseEveryone(sig, err)
		return 0
	}
	c.apply(f, skipped, sig, cur)
	return 0
}

// apply puts the good lines of a new version in effect and reports its bad ones, each by number (never its content).
// Cached logins of users whose hash is unchanged stay valid; the others end now.
func (c *Controller) apply(f *htpasswd.File, skipped []*htpasswd.LineError, sig fileSig, cur *fileState) {
	c.state.Store(&fileState{file: f, sig: sig})
	kept := c.cache.prune(f)
	c.metrics.fileLoaded(len(f.Users()), skipped)
	attrs := []any{"path", c.opts.Path, "users", len(f.Users()), "cached_logins_kept", kept}
	if cur.unreadable {
		c.log.Info("htpasswd file readable again", "path", c.opts.Path)
	}
	if len(skipped) == 0 {
		c.metrics.reloadOK.Inc()
		c.log.Info("reloaded htpasswd file", attrs...)
		return
	}
	c.metrics.reloadPartial.Inc()
	for _, le := range skipped {
		c.log.Error("skipping bad line of htpasswd file", "path", c.opts.Path, "line", le.Line, "err", le.Err)
	}
	c.log.Warn("reloaded htpasswd file without its bad lines: their users are refused until fixed",
		append(attrs, "bad_lines", len(skipped))...)
}

// refuseEveryone takes every user out of effect while the file cannot be read, and says so once per version.
func (c *Controller) refuseEveryone(sig fileSig, err error) {
	empty := htpasswd.New()
	c.state.Store(&fileState{file: empty, sig: sig, unreadable: true})
	c.cache.prune(empty)
	c.metrics.reloadFailed.Inc()
	c.metrics.fileUnreadable()
	c.log.Error("htpasswd file missing or unreadable: refusing every user until it can be read again",
		"path", c.opts.Path, "err", err)
}
