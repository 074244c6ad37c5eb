package access

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/distribution/distribution/v3/registry/auth"
)

// ErrDenied is what a DeniedError matches with errors.Is.
var ErrDenied = errors.New("access denied")

// DeniedError is the answer to an authenticated request the policy does not allow: the registry answers it with
// 403 DENIED, not with a 401 challenge (the credentials are fine; asking for others would not help).
type DeniedError struct {
	User   string
	Access auth.Access // the first record the policy refused
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("access denied: user %q may not %s %s %q", e.User, e.Access.Action, e.Access.Type, e.Access.Name)
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Source yields the policy in effect; a *Live is one.
type Source interface {
	Policy() *Policy
}

// Controller authenticates with an inner access controller, then authorises with a policy.
type Controller struct {
	inner  auth.AccessController
	policy Source
}

var (
	_ auth.AccessController = (*Controller)(nil)
	_ io.Closer             = (*Controller)(nil)
)

// NewController wraps inner (which authenticates and returns challenges) with the policy from src.
func NewController(inner auth.AccessController, src Source) *Controller {
	return &Controller{inner: inner, policy: src}
}

// Authorized authenticates the request and checks every record against the policy. A request already authorised
// by this controller for these records (see WithGrant) is answered from its context, so the blob fast path and
// distribution, which both ask again, cost nothing more.
func (c *Controller) Authorized(r *http.Request, records ...auth.Access) (*auth.Grant, error) {
	if g, ok := r.Context().Value(grantKey{}).(*stash); ok && g.ac == c && g.covers(records) {
		return g.grant, nil
	}
	g, err := c.inner.Authorized(r, records...)
	if err != nil {
		return nil, err
	}
	if err := c.Check(g.User.Name, records); err != nil {
		return nil, err
	}
	return g, nil
}

// Check reports a *DeniedError for the first record the policy does not allow user.
func (c *Controller) Check(user string, records []auth.Access) error {
	p := c.policy.Policy()
	for _, a := range records {
		if !p.Permits(user, a) {
			return &DeniedError{User: user, Access: a}
		}
	}
	return nil
}

// Policy is the policy in effect.
func (c *Controller) Policy() *Policy { return c.policy.Policy() }

// Close closes the inner controller and the policy source when they are io.Closers.
func (c *Controller) Close() error {
	var errs []error
	if cl, ok := c.inner.(io.Closer); ok {
		errs = append(errs, cl.Close())
	}
	if cl, ok := c.policy.(io.Closer); ok {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

type grantKey struct{}

// stash is a grant this controller made for a request, and the records it covered.
type stash struct {
	ac      *Controller
	grant   *auth.Grant
	records []auth.Access
}

func (s *stash) covers(records []auth.Access) bool {
	for _, want := range records {
		found := false
		for _, have := range s.records {
			if have == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// WithGrant returns ctx remembering that c granted records to the request: a later Authorized call for the same
// request and records (or fewer) returns grant without authenticating again. Only server code can set it.
func (c *Controller) WithGrant(ctx context.Context, grant *auth.Grant, records []auth.Access) context.Context {
	return context.WithValue(ctx, grantKey{}, &stash{ac: c, grant: grant, records: records})
}

// User is the name of the user c granted the request in ctx, if any.
func (c *Controller) User(ctx context.Context) (string, bool) {
	g, ok := ctx.Value(grantKey{}).(*stash)
	if !ok || g.ac != c {
		return "", false
	}
	return g.grant.User.Name, true
}

// Static is a Source that always yields one policy.
type Static struct{ P *Policy }

// Policy returns the policy.
func (s Static) Policy() *Policy { return s.P }
