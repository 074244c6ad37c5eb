package nodeproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Options configure Run.
type Options struct {
	// Listen is the loopback host:port to accept connections on.
	Listen string
	// Upstream is the host:port connections are forwarded to (the registry Service's ClusterIP and port).
	Upstream string
	// DialTimeout bounds each upstream connect; default 10s.
	DialTimeout time.Duration
	// Ready, when set, receives the bound address once the proxy accepts connections.
	Ready  func(net.Addr)
	Logger *slog.Logger
}

// Validate checks the addresses: Listen must be a loopback address, so the proxy never serves outside the node.
func (o Options) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(o.Listen)
	switch {
	case err != nil || port == "":
		errs = append(errs, fmt.Errorf("--listen %q: want HOST:PORT", o.Listen))
	case host == "localhost":
	default:
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("--listen %q: must be a loopback address (127.0.0.1:PORT), so nothing outside the node reaches it", o.Listen))
		}
	}
	if h, p, err := net.SplitHostPort(o.Upstream); err != nil || h == "" || p == "" {
		errs = append(errs, fmt.Errorf("--upstream %q: want HOST:PORT", o.Upstream))
	}
	return errors.Join(errs...)
}

// Run forwards connections until ctx ends, then stops accepting and waits (up to 20s, within the kubelet's default
// grace period) for open connections.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Listen, err)
	}
	log.Info("node proxy listening", "listen", ln.Addr().String(), "upstream", o.Upstream)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting on %s: %w", o.Listen, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(conn, o, log)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		log.Warn("connections still open after 20s; stopping anyway")
	}
	return nil
}

func forward(client net.Conn, o Options, log *slog.Logger) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", o.Upstream, o.DialTimeout)
	if err != nil {
		log.Warn("connecting upstream", "upstream", o.Upstream, "err", err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // half-close: the other direction may still be sending
		}
		done <- struct{}{}
	}
	go pipe(up, client)
	go pipe(client, up)
	<-done
	<-done
}
