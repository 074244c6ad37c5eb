package registry

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

const testPolicy = `groups:
  team-a: [alice]
rules:
  - users: [admin]
    repos: ["**"]
    actions: ["*"]
  - users: [puller]
    repos: ["**"]
    actions: [pull]
  - groups: [team-a]
    repos: ["team-a/**"]
    actions: [pull, push]
`

type policyServer struct {
	*testServer
	policy string
	image  v1.Image // pushed by admin to team-a/app:1 and team-b/x:1
}

func startPolicyServer(t *testing.T, policy string) *policyServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.DeleteEnabled = true
	cfg.Htpasswd = filepath.Join(t.TempDir(), "htpasswd")
	for _, u := range []string{AdminUser, "puller", "alice"} {
		if _, err := htpasswd.AddUser(cfg.Htpasswd, u, u+"-pw", 4); err != nil {
			t.Fatal(err)
		}
	}
	cfg.AccessPolicy = filepath.Join(t.TempDir(), "access-policy.yaml")
	if err := os.WriteFile(cfg.AccessPolicy, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := &policyServer{testServer: startServer(t, cfg), policy: cfg.AccessPolicy}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ps.image = img
	for _, repo := range []string{"team-a/app", "team-b/x"} {
		if err := remote.Write(ps.ref(t, repo+":1"), img, remote.WithAuth(as(AdminUser))); err != nil {
			t.Fatalf("admin push %s: %v", repo, err)
		}
	}
	return ps
}

func as(user string) authn.Authenticator { return &authn.Basic{Username: user, Password: user + "-pw"} }

func (ps *policyServer) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(ps.url, "http://")+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (ps *policyServer) do(t *testing.T, user, method, path string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ps.url+path, nil)
	if user != "" {
		pw := user + "-pw"
		if user == "wrong" {
			user, pw = "puller", "nope"
		}
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestAccessPolicyRoutes(t *testing.T) {
	ps := startPolicyServer(t, testPolicy)
	m, _ := ps.image.Digest()
	layers, _ := ps.image.Layers()
	blob, _ := layers[0].Digest()
	denied := `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":[{"Type":"repository","Class":"","Name":"%s","Action":"%s"}]}]}` + "\n"
	tests := []struct {
		name, user, method, path string
		wantStatus               int
		wantBody                 string // checked when set; %s filled with repo and action
		repo, action             string
	}{
		{"base as puller", "puller", "GET", "/v2/", 200, "{}", "", ""},
		{"wrong password is 401", "wrong", "GET", "/v2/team-a/app/manifests/1", 401,
			`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"team-a/app","Action":"pull"}]}]}` + "\n", "", ""},
		{"anonymous is 401", "", "GET", "/v2/_catalog", 401, "", "", ""},
		{"puller gets manifest", "puller", "GET", "/v2/team-b/x/manifests/1", 200, "", "", ""},
		{"puller heads manifest", "puller", "HEAD", "/v2/team-b/x/manifests/" + m.String(), 200, "", "", ""},
		{"puller gets blob (fast path)", "puller", "GET", "/v2/team-b/x/blobs/" + blob.String(), 200, "", "", ""},
		{"puller lists tags", "puller", "GET", "/v2/team-b/x/tags/list", 200, `{"name":"team-b/x","tags":["1"]}` + "\n", "", ""},
		{"puller starts upload", "puller", "POST", "/v2/team-b/x/blobs/uploads/", 403, denied, "team-b/x", "push"},
		{"puller puts manifest", "puller", "PUT", "/v2/team-b/x/manifests/2", 403, denied, "team-b/x", "push"},
		{"puller deletes manifest", "puller", "DELETE", "/v2/team-b/x/manifests/" + m.String(), 403, denied, "team-b/x", "delete"},
		{"puller deletes blob", "puller", "DELETE", "/v2/team-b/x/blobs/" + blob.String(), 403, denied, "team-b/x", "delete"},
		{"alice cannot get other team's blob", "alice", "GET", "/v2/team-b/x/blobs/" + blob.String(), 403, denied, "team-b/x", "pull"},
		{"alice cannot list other team's tags", "alice", "GET", "/v2/team-b/x/tags/list", 403, denied, "team-b/x", "pull"},
		{"alice cannot head other team's manifest", "alice", "HEAD", "/v2/team-b/x/manifests/1", 403, "", "", ""},
		{"alice cannot read other team's referrers", "alice", "GET", "/v2/team-b/x/referrers/" + m.String(), 403, denied, "team-b/x", "pull"},
		{"alice cannot upload to other team", "alice", "POST", "/v2/team-b/y/blobs/uploads/", 403, denied, "team-b/y", "pull"},
		{"alice cannot mount from other team", "alice", "POST", "/v2/team-a/z/blobs/uploads/?mount=" + blob.String() + "&from=team-b/x", 403, denied, "team-b/x", "pull"},
		{"puller cannot mount into a repo", "puller", "POST", "/v2/team-b/z/blobs/uploads/?mount=" + blob.String() + "&from=team-b/x", 403, denied, "team-b/z", "push"},
		{"alice mounts within her team", "alice", "POST", "/v2/team-a/z/blobs/uploads/?mount=" + blob.String() + "&from=team-a/app", 201, "", "", ""},
		{"alice cannot delete in her team", "alice", "DELETE", "/v2/team-a/app/manifests/" + m.String(), 403, denied, "team-a/app", "delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := ps.do(t, tt.user, tt.method, tt.path)
			if status != tt.wantStatus {
				t.Errorf("%s %s as %s: status %d, want %d; body %s", tt.method, tt.path, tt.user, status, tt.wantStatus, body)
			}
			if status == 403 && h.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
				t.Errorf("403 without the Docker-Distribution-Api-Version header: %v", h)
			}
			if status == 403 && h.Get("Www-Authenticate") != "" {
				t.Errorf("403 carries a challenge: %v", h)
			}
			want := tt.wantBody
			if tt.repo != "" {
				want = strings.Replace(strings.Replace(want, "%s", tt.repo, 1), "%s", tt.action, 1)
			}
			if want != "" && tt.method != "HEAD" {
				if diff := cmp.Diff(want, body); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
		})
	}
	// The manifest the puller and alice tried to delete is still there.
	if _, err := remote.Head(ps.ref(t, "team-b/x@"+m.String()), remote.WithAuth(as(AdminUser))); err != nil {
		t.Errorf("manifest gone after refused deletes: %v", err)
	}
	if !strings.Contains(ps.logs.String(), `msg="access denied by policy" user=puller action=push repository=team-b/x`) {
		t.Errorf("no log line for a denial:\n%s", ps.logs.String())
	}
	for _, pw := range []string{"puller-pw", "alice-pw", "admin-pw"} {
		if strings.Contains(ps.logs.String(), pw) {
			t.Fatal("a password appears in the logs")
		}
	}
}

func TestAccessPolicyClients(t *testing.T) {
	ps := startPolicyServer(t, testPolicy)
	img, _ := random.Image(256, 1)

	// A pull-only user pulls, but cannot push; nothing is stored.
	if _, err := remote.Image(ps.ref(t, "team-a/app:1"), remote.WithAuth(as("puller"))); err != nil {
		t.Errorf("puller pull: %v", err)
	}
	err := remote.Write(ps.ref(t, "team-a/new:1"), img, remote.WithAuth(as("puller")))
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("puller push error = %v, want 403 DENIED", err)
	}
	if _, err := remote.Head(ps.ref(t, "team-a/new:1"), remote.WithAuth(as(AdminUser))); statusOf(err) != http.StatusNotFound {
		t.Errorf("after a refused push, HEAD = %v, want 404", err)
	}

	// A team-a pusher pushes into team-a only.
	if err := remote.Write(ps.ref(t, "team-a/svc:1"), img, remote.WithAuth(as("alice"))); err != nil {
		t.Errorf("alice push team-a/svc: %v", err)
	}
	if err := remote.Write(ps.ref(t, "team-b/x:evil"), img, remote.WithAuth(as("alice"))); statusOf(err) != http.StatusForbidden {
		t.Errorf("alice push team-b/x error = %v, want 403", err)
	}
	if _, err := remote.Head(ps.ref(t, "team-b/x:evil"), remote.WithAuth(as(AdminUser))); statusOf(err) != http.StatusNotFound {
		t.Errorf("after a refused push, HEAD team-b/x:evil = %v, want 404", err)
	}

	// The catalog shows each user what they may pull.
	catalog := func(user string) []string {
		reg, _ := name.NewRegistry(strings.TrimPrefix(ps.url, "http://"), name.Insecure)
		repos, err := remote.Catalog(t.Context(), reg, remote.WithAuth(as(user)))
		if err != nil {
			t.Fatalf("catalog as %s: %v", user, err)
		}
		return repos
	}
	for user, want := range map[string][]string{
		"admin":  {"team-a/app", "team-a/svc", "team-b/x"},
		"puller": {"team-a/app", "team-a/svc", "team-b/x"},
		"alice":  {"team-a/app", "team-a/svc"},
	} {
		if diff := cmp.Diff(want, catalog(user)); diff != "" {
			t.Errorf("catalog as %s (-want +got):\n%s", user, diff)
		}
	}

	// The policy reloads live: alice loses team-a.
	if err := os.WriteFile(ps.policy+".new", []byte(strings.Replace(testPolicy, `["team-a/**"]`, `["team-c/**"]`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ps.policy+".new", ps.policy); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, _ := ps.do(t, "alice", "GET", "/v2/team-a/app/tags/list")
		if status == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice still reads team-a after the policy changed (status %d)", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if diff := cmp.Diff([]string{}, catalog("alice")); diff != "" {
		t.Errorf("catalog as alice after reload (-want +got):\n%s", diff)
	}
}

func TestAccessPolicyCatalogPages(t *testing.T) {
	ps := startPolicyServer(t, testPolicy)
	img, _ := random.Image(128, 1)
	for _, repo := range []string{"team-a/b", "team-a/c", "team-b/y", "team-b/z"} {
		if err := remote.Write(ps.ref(t, repo+":1"), img, remote.WithAuth(as(AdminUser))); err != nil {
			t.Fatal(err)
		}
	}
	// alice sees team-a/app, team-a/b, team-a/c; two per page; no hidden name in the Link.
	var pages [][]string
	var links []string
	path := "/v2/_catalog?n=2"
	for path != "" {
		status, h, body := ps.do(t, "alice", "GET", path)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var c struct{ Repositories []string }
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, c.Repositories)
		link := h.Get("Link")
		links = append(links, link)
		path = ""
		if link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if diff := cmp.Diff([][]string{{"team-a/app", "team-a/b"}, {"team-a/c"}}, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`</v2/_catalog?last=team-a%2Fb&n=2>; rel="next"`, ""}, links); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	// n beyond the maximum is clamped to it (rejectMalformed), and still filtered.
	if status, _, body := ps.do(t, "alice", "GET", "/v2/_catalog?n=5000"); status != 200 || body != `{"repositories":["team-a/app","team-a/b","team-a/c"]}` {
		t.Errorf("n beyond the maximum: %d %s", status, body)
	}
}

func TestNoAccessPolicyNotice(t *testing.T) {
	ts := startServer(t, testConfig(t))
	if got := strings.Count(ts.logs.String(), "no access policy (--access-policy): every authenticated user may pull, push and delete every repository"); got != 1 {
		t.Errorf("notice logged %d times, want once:\n%s", got, ts.logs.String())
	}
	// And the catalog works (MaxEntries is set).
	if err := remote.Write(mustRef(t, ts, "app:1"), mustRandom(t), remote.WithAuth(ts.auth())); err != nil {
		t.Fatal(err)
	}
	reg, _ := name.NewRegistry(strings.TrimPrefix(ts.url, "http://"), name.Insecure)
	repos, err := remote.Catalog(t.Context(), reg, remote.WithAuth(ts.auth()))
	if err != nil || !cmp.Equal(repos, []string{"app"}) {
		t.Errorf("catalog = %v, %v", repos, err)
	}
}

func mustRef(t *testing.T, ts *testServer, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(ts.url, "http://")+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRandom(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestValidateAccessPolicy(t *testing.T) {
	cfg := testConfig(t)
	cfg.AccessPolicy = filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(cfg.AccessPolicy, []byte("rules:\n  - users: [a]\n    repos: ['**']\n    actions: [pul]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "access-policy: ") || !strings.Contains(err.Error(), `line 4: actions: unknown action "pul"`) {
		t.Errorf("Validate = %v, want the key and line named", err)
	}
	cfg.NoAuth = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "access-policy: needs authentication") {
		t.Errorf("Validate with no-auth = %v", err)
	}
}
