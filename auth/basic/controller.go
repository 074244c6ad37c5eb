package basic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// Name is the name the controller is registered under in distribution's auth registry.
const Name = "registry-kit"

func init() {
	if err := auth.Register(Name, factory); err != nil {
		panic(fmt.Sprintf("registering access controller %q: %v", Name, err)) // only on a duplicate name: a build bug
	}
}

// Options configure a Controller. Realm and Path are required; zero values of the rest mean the defaults.
type Options struct {
	Realm      string                // realm in the WWW-Authenticate challenge
	Path       string                // htpasswd file (bcrypt entries only)
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not registered

	CacheSize int // verified credentials remembered; default 10000
	// CacheTTL is how long a verified credential is remembered after its last use; default 5m. Every use extends
	// it, up to CacheMaxAge after the bcrypt check.
	CacheTTL time.Duration
	// CacheMaxAge is how long after its bcrypt check a credential is remembered at most, however often it is
	// used; default 1h. A reload that keeps a user's hash keeps their cached logins.
	CacheMaxAge  time.Duration
	PollInterval time.Duration // how often the file is stat'ed besides fsnotify events; default 2s
	AddrLimit    Limit         // failures per client address; default 20 at once, one more per second
	// PairLimit is the failure budget of one user name from one client address; default 10 at once, one more
	// every 2s. There is no budget per user name alone: failures for a user never refuse that user elsewhere.
	PairLimit Limit
	// Deprecated: user names are no longer throttled on their own (that let anyone lock a user out); ignored.
	UserLimit Limit
	// GlobalLimit is the failure budget of all clients together; while it is spent (a flood from many addresses),
	// every bcrypt verification goes through the failure lane, where clients without failures of their own wait
	// for their turn instead of being refused. Default 50 at once, one more every 100ms.
	GlobalLimit Limit
	// FailureLane is how many bcrypt verifications of clients or users with recent failures may run at once;
	// default half the CPUs, at least 1.
	FailureLane int

	disableNotify bool             // tests: rely on polling alone
	quiet         time.Duration    // tests: quietPeriod
	now           func() time.Time // tests: a fake clock for the cache, the limiters and the quiet period
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.CacheMaxAge == 0 {
		o.CacheMaxAge = time.Hour
	}
	if o.PollInterval == 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.AddrLimit == (Limit{}) {
		o.AddrLimit = Limit{Burst: 20, Every: time.Second}
	}
	if o.PairLimit == (Limit{}) {
		o.PairLimit = Limit{Burst: 10, Every: 2 * time.Second}
	}
	if o.GlobalLimit == (Limit{}) {
		o.GlobalLimit = Limit{Burst: 50, Every: 100 * time.Millisecond}
	}
	if o.quiet == 0 {
		o.quiet = quietPeriod
	}
	if o.FailureLane == 0 {
		o.FailureLane = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if o.now == nil {
		o.now = time.Now
	}
}

// Validate reports every problem with the options.
func (o Options) Validate() error {
	var errs []error
	if o.Realm == "" {
		errs = append(errs, errors.New(`"realm" must be set`))
	}
	if o.Path == "" {
		errs = append(errs, errors.New(`"path" must be set to an htpasswd file`))
	}
	if o.CacheSize < 0 || o.CacheTTL < 0 || o.CacheMaxAge < 0 || o.PollInterval < 0 || o.FailureLane < 0 {
		errs = append(errs, errors.New("cache size, cache TTL, cache max age, poll interval and failure lane must not be negative"))
	}
	for _, l := range []Limit{o.AddrLimit, o.PairLimit, o.GlobalLimit} {
		if l != (Limit{}) && (l.Burst < 1 || l.Every <= 0) {
			errs = append(errs, errors.New("failure limits need a burst of at least 1 and a positive interval"))
			break
		}
	}
	return errors.Join(errs...)
}

// Controller is a distribution AccessController checking Basic credentials against a live htpasswd file.
type Controller struct {
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	cache    *credCache
	now      func() time.Time
	addrs    *limiter // per client address
	pairs    *limiter // per client address and user name, keyed by pairHash of both
	pairHash *keyedHash
	global   *limiter
	lane     semaphore

	// verify checks a password with bcrypt; tests replace it to count calls.
	verify func(f *htpasswd.File, user, password string) bool
	// bcryptNanos is a moving average of verify's duration, used to delay throttled answers like real ones.
	bcryptNanos atomic.Int64

	state atomic.Pointer[fileState]

	reloadMu     sync.Mutex // serialises reloads and guards pending
	pending      *fileSig   // an in-place rewrite or a disappearance waiting for the quiet period
	pendingSince time.Time
	stop         context.CancelFunc
	done         chan struct{}
}

// fileState is the htpasswd file in effect: the users of the last version read (only its good lines), or none
// while the file is missing or unreadable.
type fileState struct {
	file       *htpasswd.File
	sig        fileSig
	unreadable bool
}

var (
	_ auth.AccessController = (*Controller)(nil)
	_ io.Closer             = (*Controller)(nil)
)

// New loads the htpasswd file and starts watching it for changes until Close.
func New(opts Options) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("configuring %s access controller: %w", Name, err)
	}
	opts.defaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering auth metrics: %w", err)
	}
	cache, err := newCredCache(opts.CacheSize, opts.CacheTTL, opts.CacheMaxAge)
	if err != nil {
		return nil, fmt.Errorf("creating credential cache key: %w", err)
	}
	pairHash, err := newKeyedHash()
	if err != nil {
		return nil, fmt.Errorf("creating throttle key: %w", err)
	}
	c := &Controller{
		opts:     opts,
		log:      opts.Logger,
		metrics:  m,
		cache:    cache,
		now:      opts.now,
		addrs:    newLimiter(opts.AddrLimit, 10000),
		pairs:    newLimiter(opts.PairLimit, 10000),
		pairHash: pairHash,
		global:   newLimiter(opts.GlobalLimit, 1),
		lane:     make(semaphore, opts.FailureLane),
		verify:   (*htpasswd.File).Verify,
		done:     make(chan struct{}),
	}
	c.bcryptNanos.Store(int64(50 * time.Millisecond))
	sig, _ := statFile(opts.Path)
	f, err := htpasswd.Load(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("loading htpasswd file for %s access controller: %w", Name, err)
	}
	c.state.Store(&fileState{file: f, sig: sig})
	c.metrics.fileLoaded(len(f.Users()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go c.watch(ctx, c.newDirWatcher())
	return c, nil
}

// Close stops watching the htpasswd file.
func (c *Controller) Close() error {
	c.stop()
	<-c.done
	return nil
}

// factory builds a Controller from distribution's auth options: realm and path (strings), and optionally logger
// (*slog.Logger), registerer (prometheus.Registerer) and context (context.Context; the watcher stops when it ends).
func factory(options map[string]any) (auth.AccessController, error) {
	var opts Options
	var errs []error
	str := func(key string) string {
		v, ok := options[key]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("%q must be a string, not %T", key, v))
		}
		return s
	}
	opts.Realm, opts.Path = str("realm"), str("path")
	if v, ok := options["logger"]; ok && v != nil {
		if opts.Logger, ok = v.(*slog.Logger); !ok {
			errs = append(errs, fmt.Errorf(`"logger" must be a *slog.Logger, not %T`, v))
		}
	}
	if v, ok := options["registerer"]; ok && v != nil {
		if opts.Registerer, ok = v.(prometheus.Registerer); !ok {
			errs = append(errs, fmt.Errorf(`"registerer" must be a prometheus.Registerer, not %T`, v))
		}
	}
	var ctx context.Context
	if v, ok := options["context"]; ok && v != nil {
		if ctx, ok = v.(context.Context); !ok {
			errs = append(errs, fmt.Errorf(`"context" must be a context.Context, not %T`, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring %s access controller: %w", Name, err)
	}
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if ctx != nil {
		go func() {
			select {
			case <-ctx.Done():
				_ = c.Close()
			case <-c.done:
			}
		}()
	}
	return c, nil
}

// Authorized grants any request carrying valid Basic credentials; every other request gets the same challenge.
func (c *Controller) Authorized(r *http.Request, _ ...auth.Access) (*auth.Grant, error) {
	user, password, ok := r.BasicAuth()
	if !ok {
		return nil, c.challenge(auth.ErrInvalidCredential)
	}
	st := c.state.Load()
	key := c.cache.sum(user, password)
	if c.cache.hit(key, st.file, c.now()) {
		c.metrics.hit.Inc()
		c.metrics.success.Inc()
		return &auth.Grant{User: auth.UserInfo{Name: user}}, nil
	}
	c.metrics.miss.Inc()
	switch c.check(r.Context(), st, user, password, clientAddr(r)) {
	case verified:
		if hash, ok := st.file.Hash(user); ok {
			c.cache.put(key, user, hash, c.now())
		}
		c.metrics.success.Inc()
		return &auth.Grant{User: auth.UserInfo{Name: user}}, nil
	case throttled:
		c.metrics.throttled.Inc()
	default:
		c.metrics.failure.Inc()
	}
	return nil, c.challenge(auth.ErrAuthenticationFailure)
}

type outcome int

const (
	rejected outcome = iota
	verified
	throttled
)

// check runs bcrypt for a credential the cache did not know, routed by the failures of its address and of its user
// from that address (see decide).
func (c *Controller) check(ctx context.Context, st *fileState, user, password, addr string) outcome {
	if st.unreadable {
		// Nobody can log in, through no fault of the client's: refuse without spending its failure budget, so
		// clients retrying meanwhile are not throttled once the file is back.
		c.delayLikeBcrypt(ctx)
		return rejected
	}
	pair := c.pairKey(addr, user)
	switch r := c.route(addr, pair); r {
	case routeRefuse:
		c.delayLikeBcrypt(ctx)
		return throttled
	case routeSuspect, routeFlood:
		wait := 2 * time.Second
		if r == routeFlood {
			wait = 0 // as long as the client waits
		}
		if !c.lane.acquire(ctx, wait) {
			return throttled
		}
		defer c.lane.release()
		// The budget may have been spent by the requests ahead in the lane.
		if c.route(addr, pair) == routeRefuse {
			return throttled
		}
	}
	start := time.Now()
	ok := c.verify(st.file, user, password)
	c.recordBcrypt(time.Since(start))
	if ok {
		return verified
	}
	now := c.now()
	addrNow, pairNow := c.addrs.fail(addr, now), c.pairs.fail(pair, now)
	if c.global.fail(globalKey, now) {
		c.log.Warn("authentication failures from many clients: new clients' password checks now share the failure lane")
	}
	c.log.Info("authentication failed", "user", logName(user), "client", addr)
	if addrNow {
		c.log.Warn("throttling authentication failures from client", "client", addr)
	}
	if pairNow {
		c.log.Warn("throttling authentication failures for user from client", "user", logName(user), "client", addr)
	}
	return rejected
}

// globalKey is the single key of the global failure limiter.
const globalKey = "*"

// route decides how a request from addr for the (address, user) pair key is checked now.
func (c *Controller) route(addr, pair string) route {
	now := c.now()
	flood := c.global.state(globalKey, now).throttled
	return decide(c.addrs.state(addr, now), c.pairs.state(pair, now), flood)
}

// pairKey is the pairs limiter's key for a user from addr: a fixed-size keyed hash, as user names are
// client-supplied and unbounded.
func (c *Controller) pairKey(addr, user string) string {
	k := c.pairHash.sum(addr, user)
	return string(k[:])
}

// recordBcrypt folds one bcrypt duration into the moving average.
func (c *Controller) recordBcrypt(d time.Duration) {
	old := c.bcryptNanos.Load()
	c.bcryptNanos.Store(old + (int64(d)-old)/8)
}

// delayLikeBcrypt waits about as long as a bcrypt verification takes, without using CPU, so a throttled answer
// arrives with the timing of an ordinary failure.
func (c *Controller) delayLikeBcrypt(ctx context.Context) {
	t := time.NewTimer(time.Duration(c.bcryptNanos.Load()))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// logName bounds a client-supplied user name for logging.
func logName(user string) string {
	const maxLen = 128
	if len(user) > maxLen {
		return user[:maxLen] + "..."
	}
	return user
}

// clientAddr is the request's peer address without the port. X-Forwarded-For is ignored because any client can set
// it: behind a reverse proxy, all clients share the proxy's failure budget (logged-in clients are unaffected).
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// challenge is the 401 answer: distribution's handler calls SetHeaders and writes an UNAUTHORIZED error body.
type challenge struct {
	realm string
	err   error
}

var _ auth.Challenge = challenge{}

func (c *Controller) challenge(err error) challenge { return challenge{realm: c.opts.Realm, err: err} }

// SetHeaders sets the Basic challenge header.
func (ch challenge) SetHeaders(_ *http.Request, w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", ch.realm))
}

func (ch challenge) Error() string {
	return fmt.Sprintf("basic authentication challenge for realm %q: %s", ch.realm, ch.err)
}
