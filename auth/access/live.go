package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// LiveOptions configure a Live policy. Path is required.
type LiveOptions struct {
	Path         string
	Logger       *slog.Logger          // nil: discard
	Registerer   prometheus.Registerer // nil: metrics are kept but not registered
	PollInterval time.Duration         // how often the file is stat'ed besides fsnotify events; default 2s

	quiet time.Duration // tests: how long an in-place rewrite must stay unchanged; default 200ms
}

// Live is a policy file that is reloaded when it changes. A version that does not parse is reported (log line and
// registry_kit_access_policy_reloads_total{result="failure"}) and the last good policy stays in effect.
type Live struct {
	opts    LiveOptions
	log     *slog.Logger
	cur     atomic.Pointer[Policy]
	sig     fileSig // the version last loaded or tried; only the watcher goroutine touches it after Load
	pending fileSig
	since   time.Time
	ok, bad prometheus.Counter
	stop    context.CancelFunc
	done    chan struct{}
}

var _ Source = (*Live)(nil)

// Load reads the policy file, which must parse, and watches it until Close.
func Load(opts LiveOptions) (*Live, error) {
	if opts.Path == "" {
		return nil, errors.New("loading access policy: no file given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.quiet <= 0 {
		opts.quiet = 200 * time.Millisecond
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_access_policy_reloads_total",
		Help: "Reloads of the access policy file after it changed, by result: success or failure (the last good policy stays).",
	}, []string{"result"})
	if opts.Registerer != nil {
		var err error
		if reloads, err = registerCounter(opts.Registerer, reloads); err != nil {
			return nil, fmt.Errorf("registering access policy metrics: %w", err)
		}
	}
	l := &Live{opts: opts, log: opts.Logger, ok: reloads.WithLabelValues("success"),
		bad: reloads.WithLabelValues("failure"), done: make(chan struct{})}
	l.sig, _ = statFile(opts.Path)
	p, err := ReadFile(opts.Path)
	if err != nil {
		return nil, err
	}
	l.cur.Store(p)
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go l.watch(ctx)
	return l, nil
}

// ReadFile reads and parses a policy file; errors name the file and the line.
func ReadFile(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading access policy: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Policy is the policy in effect.
func (l *Live) Policy() *Policy { return l.cur.Load() }

// Close stops watching the file.
func (l *Live) Close() error {
	l.stop()
	<-l.done
	return nil
}

func (l *Live) watch(ctx context.Context) {
	defer close(l.done)
	var events <-chan fsnotify.Event
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		events = w.Events
		// The directory, and the one the file resolves to: a Kubernetes volume swaps a symlinked directory.
		_ = w.Add(filepath.Dir(l.opts.Path))
		if resolved, err := filepath.EvalSymlinks(l.opts.Path); err == nil && filepath.Dir(resolved) != filepath.Dir(l.opts.Path) {
			_ = w.Add(filepath.Dir(resolved))
		}
	}
	poll := time.NewTicker(l.opts.PollInterval)
	defer poll.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	check := func() {
		if retry := l.reloadIfChanged(time.Now()); retry > 0 {
			settle.Reset(retry)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			settle.Reset(20 * time.Millisecond)
		case <-settle.C:
			check()
		case <-poll.C:
			check()
		}
	}
}

// reloadIfChanged loads the file when its signature changed. A file rewritten in place must stay unchanged for the
// quiet period first, so a half-written version is not loaded; it returns when to look again.
func (l *Live) reloadIfChanged(now time.Time) time.Duration {
	sig, err := statFile(l.opts.Path)
	if err != nil {
		sig = fileSig{}
	}
	if sig == l.sig {
		return 0
	}
	if err == nil && sig.ino != 0 && sig.dev == l.sig.dev && sig.ino == l.sig.ino {
		if sig != l.pending {
			l.pending, l.since = sig, now
			return l.opts.quiet
		}
		if wait := l.opts.quiet - now.Sub(l.since); wait > 0 {
			return wait
		}
	}
	p, err := ReadFile(l.opts.Path)
	if after, _ := statFile(l.opts.Path); after != sig {
		return l.opts.quiet
	}
	l.sig = sig
	if err != nil {
		l.bad.Inc()
		l.log.Error("reloading access policy; keeping the previous policy", "path", l.opts.Path, "err", err)
		return 0
	}
	l.cur.Store(p)
	l.ok.Inc()
	l.log.Info("reloaded access policy", "path", l.opts.Path, "policy", p.String())
	return 0
}

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

func registerCounter(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}
