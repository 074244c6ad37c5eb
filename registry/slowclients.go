package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the slow-client limits.
const (
	// DefaultBodyIdleTimeout cuts a request body that sends nothing for this long; a slow body that keeps moving
	// is never cut.
	DefaultBodyIdleTimeout = time.Minute
	// DefaultMaxUnauthenticatedConns is how many connections one client address may hold open before any request on
	// them has authenticated.
	DefaultMaxUnauthenticatedConns = 64
)

// limitBodyIdle gives every request body an idle timeout: the connection's read deadline is idle from now, and
// each Read moves it on, so only a body that stops moving is cut (its Read then fails, and the server drops the
// connection). The deadline is also what bounds the server's own read of a body nobody read (an
// unauthenticated PATCH answered 401 before its trickling body arrives). Requests without a body are left alone:
// for them the server reads the connection in the background for the whole response, and a deadline would cut
// long downloads.
func limitBodyIdle(idle time.Duration, next http.Handler) http.Handler {
	if idle <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		b := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: idle}
		if b.extend(time.Now()) == nil {
			r.Body = b
		}
		next.ServeHTTP(w, r)
	})
}

// idleBody moves the read deadline on each time the handler asks for more, so the timeout measures how long the
// client keeps us waiting, not how long the handler spent between reads (writing a part to slow object storage).
// It renews at most every idle/16, so a fast upload does not pay a deadline update per Read; the effective idle
// timeout is between 15/16 of idle and idle.
type idleBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	extended time.Time
	eof      bool
}

func (b *idleBody) extend(now time.Time) error {
	b.extended = now
	return b.rc.SetReadDeadline(now.Add(b.idle))
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.eof {
		// From EOF on the server reads the connection in the background (to notice a client going away) until the
		// response is done, with no deadline; setting one now would cut that read and cancel the request.
		return b.ReadCloser.Read(p)
	}
	if now := time.Now(); now.Sub(b.extended) >= b.idle/16 {
		_ = b.extend(now)
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("request body sent nothing for %s (body-idle-timeout): %w", b.idle, err)
	}
	return n, err
}

// connLimiter bounds, per client address, the connections on which no request has authenticated yet. A connection
// over the bound is closed as soon as it is accepted. The access controller marks a connection authenticated
// (authenticating), after which it no longer counts.
type connLimiter struct {
	max     int
	logger  *slog.Logger
	refused prometheus.Counter

	mu      sync.Mutex
	perHost map[string]int
	unauth  map[net.Conn]string // connection -> client address, while unauthenticated
}

func newConnLimiter(max int, logger *slog.Logger, reg prometheus.Registerer) *connLimiter {
	l := &connLimiter{max: max, logger: logger, perHost: map[string]int{}, unauth: map[net.Conn]string{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registry_kit_unauthenticated_connections_refused_total",
			Help: "Connections closed on accept because their client address already held max-unauthenticated-conns unauthenticated connections.",
		})}
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				l.refused = are.ExistingCollector.(prometheus.Counter)
			}
		}
	}
	return l
}

type connKey struct{}

// connContext puts the connection into its requests' contexts (http.Server.ConnContext).
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// connState admits or closes new connections and forgets closed ones (http.Server.ConnState).
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		host := clientHost(c.RemoteAddr())
		l.mu.Lock()
		ok := l.perHost[host] < l.max
		if ok {
			l.perHost[host]++
			l.unauth[c] = host
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Inc()
			l.logger.Debug("closing connection: too many unauthenticated connections from this address",
				"remote", host, "max-unauthenticated-conns", l.max)
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		l.forget(c)
	}
}

func (l *connLimiter) forget(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	host, ok := l.unauth[c]
	if !ok {
		return
	}
	delete(l.unauth, c)
	if l.perHost[host]--; l.perHost[host] <= 0 {
		delete(l.perHost, host)
	}
}

// authenticated stops counting the connection a request authenticated on.
func (l *connLimiter) authenticated(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(net.Conn); ok {
		l.forget(c)
	}
}

// watch returns ac marking the connection of each request it authorizes as authenticated.
func (l *connLimiter) watch(ac auth.AccessController) auth.AccessController {
	return markingController{AccessController: ac, l: l}
}

type markingController struct {
	auth.AccessController
	l *connLimiter
}

// Close closes the wrapped controller (it reloads its htpasswd file in the background).
func (m markingController) Close() error {
	if c, ok := m.AccessController.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (m markingController) Authorized(r *http.Request, access ...auth.Access) (*auth.Grant, error) {
	g, err := m.AccessController.Authorized(r, access...)
	if err == nil {
		m.l.authenticated(r.Context())
	}
	return g, err
}

func clientHost(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
