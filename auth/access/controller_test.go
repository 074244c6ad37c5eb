package access

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3/registry/auth"

	"github.com/registry-kit/registry-kit/auth/basic"
	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

func TestController(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	for _, u := range []string{"ci", "admin"} {
		if _, err := htpasswd.AddUser(path, u, u+"-secret", 4); err != nil {
			t.Fatal(err)
		}
	}
	inner, err := basic.New(basic.Options{Realm: "test", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(pullOnly + "  - users: [admin]\n    repos: ['**']\n    actions: ['*']\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(inner, Static{P: p})
	defer c.Close()
	pull := auth.Access{Resource: auth.Resource{Type: "repository", Name: "app"}, Action: "pull"}
	push := auth.Access{Resource: auth.Resource{Type: "repository", Name: "app"}, Action: "push"}
	catalog := auth.Access{Resource: auth.Resource{Type: "registry", Name: "catalog"}, Action: "*"}

	tests := []struct {
		name, user, password string
		records              []auth.Access
		want                 string // granted, denied or challenge
	}{
		{"puller pulls", "ci", "ci-secret", []auth.Access{pull}, "granted"},
		{"puller pushes", "ci", "ci-secret", []auth.Access{pull, push}, "denied"},
		{"puller lists the catalog", "ci", "ci-secret", []auth.Access{catalog}, "granted"},
		{"admin pushes", "admin", "admin-secret", []auth.Access{pull, push}, "granted"},
		{"wrong password is challenged, not denied", "ci", "wrong", []auth.Access{pull, push}, "challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/", nil)
			r.SetBasicAuth(tt.user, tt.password)
			_, err := c.Authorized(r, tt.records...)
			got := "granted"
			var ch auth.Challenge
			switch {
			case errors.As(err, &ch):
				got = "challenge"
			case errors.Is(err, ErrDenied):
				got = "denied"
			case err != nil:
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Authorized = %s (%v), want %s", got, err, tt.want)
			}
		})
	}

	// A grant stashed in the request's context answers a repeated question for the same or fewer records only.
	r := httptest.NewRequest("GET", "/v2/app/blobs/x", nil)
	r.SetBasicAuth("ci", "ci-secret")
	g, err := c.Authorized(r, pull)
	if err != nil {
		t.Fatal(err)
	}
	r = r.WithContext(c.WithGrant(r.Context(), g, []auth.Access{pull}))
	if _, err := c.Authorized(r, pull); err != nil {
		t.Errorf("stashed grant not used: %v", err)
	}
	if _, err := c.Authorized(r, pull, push); !errors.Is(err, ErrDenied) {
		t.Errorf("a record outside the stashed grant was not checked: %v", err)
	}
	if u, ok := c.User(r.Context()); !ok || u != "ci" {
		t.Errorf("User = %q, %v", u, ok)
	}
}
