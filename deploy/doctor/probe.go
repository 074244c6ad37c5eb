package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// prober talks to registries the way containerd would from the node: HTTPS, with plain HTTP allowed only for
// loopback hosts and the hosts the user named insecure.
type prober struct {
	insecure map[string]bool
	timeout  time.Duration
	base     http.RoundTripper
	log      *slog.Logger

	mu    sync.Mutex
	reach map[string]reachResult // by host, so many pods on one registry cost one probe
}

type reachResult struct {
	scheme string // "https" or "http" when reachable
	cause  Cause
	msg    string
}

func newProber(opts Options) *prober {
	base := opts.Transport
	if base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // probe the registry directly, as a node without proxy settings would
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
		tr.DialContext = (&net.Dialer{Timeout: opts.Timeout}).DialContext
		tr.TLSHandshakeTimeout = opts.Timeout
		tr.ResponseHeaderTimeout = opts.Timeout
		base = tr
	}
	p := &prober{insecure: map[string]bool{}, timeout: opts.Timeout, base: base, log: opts.Logger, reach: map[string]reachResult{}}
	for _, h := range opts.InsecureRegistries {
		p.insecure[h] = true
	}
	return p
}

// allowHTTP reports whether containerd would fall back to plain HTTP for host: loopback names and addresses, and the
// hosts given as insecure.
func (p *prober) allowHTTP(host string) bool {
	if p.insecure[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if p.insecure[h] || h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// registry returns the go-containerregistry name for host, insecure (HTTP allowed) only where containerd allows it.
func (p *prober) registry(host string) (name.Registry, error) {
	var opts []name.Option
	if p.allowHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(host, opts...)
}

// ping answers whether the registry at host answers GET /v2/ at all, and over which scheme.
func (p *prober) ping(ctx context.Context, host string) reachResult {
	p.mu.Lock()
	r, ok := p.reach[host]
	p.mu.Unlock()
	if ok {
		return r
	}
	r = p.pingUncached(ctx, host)
	p.log.Debug("pinged registry", "host", host, "scheme", r.scheme, "cause", r.cause)
	p.mu.Lock()
	p.reach[host] = r
	p.mu.Unlock()
	return r
}

func (p *prober) pingUncached(ctx context.Context, host string) reachResult {
	err := p.get(ctx, "https://"+host+"/v2/")
	if err == nil {
		return reachResult{scheme: "https", msg: fmt.Sprintf("%s answers /v2/ over HTTPS", host)}
	}
	cause, msg := classifyNetError(host, err)
	if p.allowHTTP(host) && cause != CauseDNS && cause != CauseConnectionRefused {
		if herr := p.get(ctx, "http://"+host+"/v2/"); herr == nil {
			return reachResult{scheme: "http", msg: fmt.Sprintf("%s answers /v2/ over plain HTTP (allowed: loopback or --insecure-registry)", host)}
		}
	}
	return reachResult{cause: cause, msg: msg}
}

// get sends an anonymous GET and succeeds on any HTTP answer that looks like a registry (200 or 401).
func (p *prober) get(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: p.base}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("GET %s: unexpected status %s (not a registry /v2/ endpoint?)", url, resp.Status)
	}
	return nil
}

// classifyNetError names the network cause of err and a message that says it in words.
func classifyNetError(host string, err error) (Cause, string) {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invErr x509.CertificateInvalidError
	var netErr net.Error
	s := err.Error()
	switch {
	case errors.As(err, &dnsErr):
		return CauseDNS, fmt.Sprintf("%s does not resolve from here: %s", host, dnsErr.Error())
	case strings.Contains(s, "no suitable address found"), strings.Contains(s, "no such host"):
		return CauseDNS, fmt.Sprintf("%s does not resolve from here (no address for it)", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseConnectionRefused, fmt.Sprintf("connection to %s refused: nothing listens on that port", host)
	case strings.Contains(s, "server gave HTTP response to HTTPS client"):
		return CauseHTTPServed, fmt.Sprintf("%s serves plain HTTP but the kubelet's containerd speaks HTTPS to it", host)
	case errors.As(err, &certErr), errors.As(err, &uaErr), errors.As(err, &hostErr), errors.As(err, &invErr),
		strings.Contains(s, "x509: "):
		return CauseTLSUntrusted, fmt.Sprintf("TLS certificate of %s is not trusted: %s", host, tlsReason(err))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return CauseTimeout, fmt.Sprintf("%s did not answer in time", host)
	}
	return CauseUnknown, fmt.Sprintf("%s cannot be reached: %v", host, err)
}

func tlsReason(err error) string {
	s := err.Error()
	if i := strings.Index(s, "x509: "); i >= 0 {
		return s[i:]
	}
	return s
}

// authResult is what the registry says about one set of credentials.
type authResult struct {
	rt    http.RoundTripper // authenticated transport scoped to pull the repository, when accepted
	cause Cause             // "" when accepted, CauseCredentialsRejected, or a network cause
	msg   string
	user  string // the user name of the accepted credentials ("" for anonymous)
}

// authenticate runs the registry's challenge (Basic or Bearer token) with auth and checks /v2/ with the result.
func (p *prober) authenticate(ctx context.Context, repo name.Repository, auth authn.Authenticator) authResult {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	host := repo.RegistryStr()
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, p.base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return authFailure(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/v2/", nil)
	if err != nil {
		return authResult{cause: CauseUnknown, msg: err.Error()}
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return authFailure(host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return authFailure(host, err)
	}
	return authResult{rt: rt, msg: fmt.Sprintf("%s accepts them (GET /v2/ -> %d)", host, resp.StatusCode)}
}

func authFailure(host string, err error) authResult {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return authResult{cause: CauseCredentialsRejected,
			msg: fmt.Sprintf("%s rejects them: %d %s", host, terr.StatusCode, http.StatusText(terr.StatusCode))}
	}
	cause, msg := classifyNetError(host, err)
	return authResult{cause: cause, msg: msg}
}

// headManifest checks that ref exists, with an authenticated (or anonymous) transport from authenticate.
func (p *prober) headManifest(ctx context.Context, ref name.Reference, rt http.RoundTripper) (Cause, string) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	desc, err := remote.Head(ref, remote.WithTransport(rt), remote.WithContext(ctx))
	if err == nil {
		return "", fmt.Sprintf("%s exists (%s)", ref.Name(), desc.Digest)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return CauseImageNotFound, fmt.Sprintf("%s does not exist on %s (HEAD manifest -> 404)", ref.Name(), ref.Context().RegistryStr())
		case http.StatusForbidden:
			// The credentials passed GET /v2/: a 403 is the registry's access policy (DENIED), not a bad password.
			return CauseAccessDenied, fmt.Sprintf("the credentials are valid but not allowed to pull %s (HEAD manifest -> 403 DENIED)", ref.Context().RepositoryStr())
		case http.StatusUnauthorized:
			return CauseCredentialsRejected, fmt.Sprintf("the credentials may not pull %s (HEAD manifest -> %d)", ref.Context().RepositoryStr(), terr.StatusCode)
		}
	}
	cause, msg := classifyNetError(ref.Context().RegistryStr(), err)
	return cause, msg
}
