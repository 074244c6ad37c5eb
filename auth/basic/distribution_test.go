package basic

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // upstream's controller, the reference
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// newRegistry serves a real distribution app using the named access controller.
func newRegistry(t *testing.T, controller string, params configuration.Parameters) *httptest.Server {
	t.Helper()
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{"inmemory": configuration.Parameters{}, "maintenance": configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": false}}},
		Auth: configuration.Auth{controller: params},
	}
	cfg.Log.Level = "error"
	app := handlers.NewApp(t.Context(), cfg)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	Status                       int
	WWWAuthenticate, ContentType string
	APIVersion, Body             string
}

func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard) // distribution's request logs
	os.Exit(m.Run())
}

func get(t *testing.T, url, user, password string) (response, time.Duration) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{
		Status: res.StatusCode, WWWAuthenticate: res.Header.Get("WWW-Authenticate"),
		ContentType: res.Header.Get("Content-Type"), APIVersion: res.Header.Get("Docker-Distribution-Api-Version"),
		Body: string(body),
	}, time.Since(start)
}

// TestResponsesMatchUpstream checks every kind of rejection, throttled included, looks exactly like upstream
// distribution's htpasswd controller rejecting the same request.
func TestResponsesMatchUpstream(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	reg := prometheus.NewRegistry()
	ours := newRegistry(t, Name, configuration.Parameters{"realm": "Registry Realm", "path": path, "context": t.Context(), "registerer": reg})
	upstream := newRegistry(t, "htpasswd", configuration.Parameters{"realm": "Registry Realm", "path": path})

	for _, p := range []string{"/v2/", "/v2/library/app/manifests/latest", "/v2/_catalog"} {
		want, _ := get(t, upstream.URL+p, "alice", "wrong")
		if want.Status != http.StatusUnauthorized || want.WWWAuthenticate != `Basic realm="Registry Realm"` {
			t.Fatalf("upstream reference answered %+v", want)
		}
		cases := []struct{ name, user, password string }{
			{"anonymous", "", ""},
			{"wrong password", "alice", "wrong"},
			{"unknown user", "mallory", "wrong"},
		}
		for _, tc := range cases {
			t.Run(p+" "+tc.name, func(t *testing.T) {
				got, _ := get(t, ours.URL+p, tc.user, tc.password)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("response differs from upstream's (-upstream +ours):\n%s", diff)
				}
			})
		}
		t.Run(p+" granted", func(t *testing.T) {
			got, _ := get(t, ours.URL+p, "alice", "pw-alice")
			ref, _ := get(t, upstream.URL+p, "alice", "pw-alice")
			if got.Status != ref.Status {
				t.Errorf("status %d, upstream %d", got.Status, ref.Status)
			}
		})
	}

	// A genuine failure, checked by bcrypt, then alice's budget from the loopback address spent: a throttled answer
	// must look exactly like the genuine failure.
	if n := counter(t, reg, "registry_kit_auth_requests_total", "throttled"); n != 0 {
		t.Fatalf("%v requests throttled before the budget was spent", n)
	}
	failure, _ := get(t, ours.URL+"/v2/", "bob", "wrong")
	if n := counter(t, reg, "registry_kit_auth_requests_total", "throttled"); n != 0 {
		t.Fatal("the reference failure was itself throttled")
	}
	for range 25 {
		get(t, ours.URL+"/v2/", "alice", "wrong")
	}
	before := counter(t, reg, "registry_kit_auth_requests_total", "throttled")
	throttled, _ := get(t, ours.URL+"/v2/", "alice", "wrong")
	if after := counter(t, reg, "registry_kit_auth_requests_total", "throttled"); after != before+1 {
		t.Fatalf("the last wrong password was not throttled (throttled %v -> %v)", before, after)
	}
	if diff := cmp.Diff(failure, throttled); diff != "" {
		t.Errorf("throttled response differs from a genuine failure (-failure +throttled):\n%s", diff)
	}
	// A logged-in client from the throttled address still gets in with its cached credential.
	if got, _ := get(t, ours.URL+"/v2/", "alice", "pw-alice"); got.Status != http.StatusOK {
		t.Errorf("cached alice got %d from a throttled address", got.Status)
	}
}
