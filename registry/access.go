package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/access"
)

// catalogDefaultEntries is the page size without ?n=, as distribution's.
const catalogDefaultEntries = 100

// withAccessPolicy wraps the authenticating controller with the policy file, or returns it unchanged (and says so,
// once) when there is none.
func withAccessPolicy(cfg Config, inner auth.AccessController, logger *slog.Logger, reg prometheus.Registerer) (auth.AccessController, *access.Controller, error) {
	path := cfg.AccessPolicyPath()
	if path == "" {
		logger.Warn("no access policy (--access-policy): every authenticated user may pull, push and delete every repository")
		return inner, nil, nil
	}
	live, err := access.Load(access.LiveOptions{Path: path, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("access-policy: %w", err)
	}
	logger.Info("access policy in effect", "path", path, "policy", live.Policy().String())
	pc := access.NewController(inner, live)
	return pc, pc, nil
}

// accessEnforcer authorises every registry API request against the policy before distribution sees it. distribution
// itself answers a refusal that is not a challenge with a bare 400; this answers it as the distribution spec says:
// 403 with a DENIED error body. Unauthenticated requests get the same 401 challenge distribution gives. Granted
// requests carry the grant in their context, so the blob fast path and distribution do not authenticate again.
type accessEnforcer struct {
	ac     *access.Controller
	log    *slog.Logger
	next   http.Handler
	denied prometheus.Counter
}

func newAccessEnforcer(ac *access.Controller, logger *slog.Logger, reg prometheus.Registerer, next http.Handler) http.Handler {
	denied := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "registry_kit_access_denied_total",
		Help: "Authenticated requests the access policy refused (403 DENIED).",
	})
	if reg != nil {
		if err := reg.Register(denied); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if c, ok := are.ExistingCollector.(prometheus.Counter); ok {
					denied = c
				}
			}
		}
	}
	return &accessEnforcer{ac: ac, log: logger, next: next, denied: denied}
}

func (e *accessEnforcer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	records, route, ok := access.Records(r)
	if !ok {
		e.next.ServeHTTP(w, r) // not an API route: distribution answers (404), checking again itself
		return
	}
	grant, err := e.ac.Authorized(r, records...)
	if err != nil {
		e.refuse(w, r, records, err)
		return
	}
	covered := records
	if route == v2.RouteNameBlobUploadChunk && r.Method == http.MethodDelete && len(records) > 0 {
		// The policy lets a pusher cancel an upload; distribution asks for delete on it: this request's grant
		// answers that question too.
		covered = append(slices.Clone(records), auth.Access{Resource: records[0].Resource, Action: string(access.Delete)})
	}
	r = r.WithContext(e.ac.WithGrant(r.Context(), grant, covered))
	if route == v2.RouteNameCatalog && r.Method == http.MethodGet {
		e.catalog(w, r, grant.User.Name)
		return
	}
	e.next.ServeHTTP(w, r)
}

func (e *accessEnforcer) refuse(w http.ResponseWriter, r *http.Request, records []auth.Access, err error) {
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	var ch auth.Challenge
	var denied *access.DeniedError
	switch {
	case errors.As(err, &ch):
		ch.SetHeaders(r, w)
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized.WithDetail(records))
	case errors.As(err, &denied):
		e.denied.Inc()
		e.log.Info("access denied by policy", "user", denied.User, "action", denied.Access.Action,
			"repository", denied.Access.Name, "method", r.Method, "client", r.RemoteAddr)
		_ = errcode.ServeJSON(w, errcode.ErrorCodeDenied.WithDetail([]auth.Access{denied.Access}))
	default:
		e.log.Error("checking authorization", "err", err)
		w.WriteHeader(http.StatusBadRequest)
	}
}

// catalog answers GET /v2/_catalog with only the repositories user may pull. It reads distribution's catalog page
// by page and keeps paginating itself, so ?n= and the Link header behave as without a policy and no hidden name
// shows, not even in a Link's last=.
func (e *accessEnforcer) catalog(w http.ResponseWriter, r *http.Request, user string) {
	q := r.URL.Query()
	n := catalogDefaultEntries
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > maxCatalogEntries {
			e.next.ServeHTTP(w, r) // distribution's PAGINATION_NUMBER_INVALID
			return
		}
		n = v
	}
	policy := e.ac.Policy()
	last := q.Get("last")
	visible := []string{}
	more := false
	for n > 0 {
		page, hasNext, resp := e.catalogPage(r, last)
		if resp != nil {
			resp.copyTo(w) // an error from distribution
			return
		}
		for i, repo := range page {
			if !policy.Allows(user, repo, access.Pull) {
				continue
			}
			visible = append(visible, repo)
			if len(visible) == n {
				more = hasNext || i < len(page)-1
				break
			}
		}
		if len(visible) == n || !hasNext || len(page) == 0 {
			break
		}
		last = page[len(page)-1]
	}
	body, _ := json.Marshal(map[string][]string{"repositories": visible})
	h := w.Header()
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if more {
		v := url.Values{"last": {visible[len(visible)-1]}, "n": {strconv.Itoa(n)}}
		h.Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, v.Encode()))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// catalogPage asks distribution for up to maxCatalogEntries repositories after last. A non-200 answer is returned
// as resp, to be passed on.
func (e *accessEnforcer) catalogPage(r *http.Request, last string) (repos []string, hasNext bool, resp *bufferedResponse) {
	sub := r.Clone(r.Context())
	v := url.Values{"n": {strconv.Itoa(maxCatalogEntries)}}
	if last != "" {
		v.Set("last", last)
	}
	sub.URL.RawQuery = v.Encode()
	sub.RequestURI = sub.URL.RequestURI()
	rec := &bufferedResponse{header: http.Header{}}
	e.next.ServeHTTP(rec, sub)
	var body struct {
		Repositories []string `json:"repositories"`
	}
	if rec.status() != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &body) != nil {
		return nil, false, rec
	}
	return body.Repositories, rec.header.Get("Link") != "", nil
}

// bufferedResponse keeps a response in memory.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status())
	_, _ = w.Write(b.body.Bytes())
}
