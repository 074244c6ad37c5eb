package registry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

type testServer struct {
	*Server
	url      string
	logs     *lockedbuf.Buffer
	notices  *lockedbuf.Buffer
	password string
	stop     func() error
}

func testConfig(t *testing.T) Config {
	t.Helper()
	c := DefaultConfig()
	c.Addr, c.MetricsAddr, c.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	c.LogLevel = "debug"
	c.ShutdownGrace = 10 * time.Second
	return c
}

// startServer runs a real server on loopback until the test ends (or stop is called). beforeRun hooks can replace
// parts of the server (a clock) between New and Run.
func startServer(t *testing.T, cfg Config, beforeRun ...func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{logs: &lockedbuf.Buffer{}, notices: &lockedbuf.Buffer{}}
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg, WithLogger(logger), WithNotices(ts.notices))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, h := range beforeRun {
		h(srv)
	}
	ts.Server, ts.url = srv, "http://"+srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	var runErr error
	ts.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		first := false
		once.Do(func() { first = true; cancel(); runErr = <-done })
		if first && runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	})
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminPasswordFile)); err == nil {
		ts.password = strings.TrimSpace(string(b))
	}
	return ts
}

func (ts *testServer) auth() authn.Authenticator {
	return &authn.Basic{Username: AdminUser, Password: ts.password}
}

func TestBaseRoute(t *testing.T) {
	ts := startServer(t, testConfig(t))
	tests := []struct {
		name       string
		user, pass string
		wantStatus int
		wantHeader http.Header
		wantBody   string
	}{
		{
			name: "anonymous", wantStatus: http.StatusUnauthorized,
			wantHeader: http.Header{"Www-Authenticate": {`Basic realm="registry-kit"`}, "Docker-Distribution-Api-Version": {"registry/2.0"},
				"Content-Type": {"application/json"}},
			wantBody: `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}` + "\n",
		},
		{
			name: "wrong password", user: AdminUser, pass: "wrong", wantStatus: http.StatusUnauthorized,
			wantHeader: http.Header{"Www-Authenticate": {`Basic realm="registry-kit"`}, "Docker-Distribution-Api-Version": {"registry/2.0"},
				"Content-Type": {"application/json"}},
			wantBody: `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}` + "\n",
		},
		{
			name: "admin", user: AdminUser, pass: ts.password, wantStatus: http.StatusOK,
			wantHeader: http.Header{"Docker-Distribution-Api-Version": {"registry/2.0"}, "Content-Type": {"application/json"}},
			wantBody:   "{}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.url+"/v2/", nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			got := http.Header{}
			for k := range tt.wantHeader {
				got[k] = resp.Header.Values(k)
			}
			if diff := cmp.Diff(tt.wantHeader, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBody, string(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if strings.Contains(ts.logs.String(), ts.password) {
		t.Error("the admin password appears in the logs")
	}
}

func TestZeroConfigCreatesAdmin(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)

	pwFile := filepath.Join(cfg.DataDir, AdminPasswordFile)
	fi, err := os.Stat(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode = %v, want 0600", pwFile, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(pwFile)
	if !strings.HasSuffix(string(raw), "\n") || strings.Count(string(raw), "\n") != 1 || len(ts.password) < 24 {
		t.Errorf("password file holds %d bytes: want one line of >= 24 characters", len(raw))
	}
	if ok, err := htpasswd.VerifyUser(cfg.HtpasswdPath(), AdminUser, ts.password); err != nil || !ok {
		t.Errorf("htpasswd does not accept the generated password: ok=%v err=%v", ok, err)
	}
	notices := ts.notices.String()
	for _, want := range []string{pwFile, "docker login " + ts.Addr().String() + " -u admin --password-stdin < " + pwFile} {
		if !strings.Contains(notices, want) {
			t.Errorf("notices lack %q", want)
		}
	}
	if strings.Contains(notices, ts.password) || strings.Contains(ts.logs.String(), ts.password) {
		t.Error("the admin password was printed or logged")
	}
	if ts.logs.String() == "" {
		t.Error("no logs captured: the password check above proves nothing")
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	// A second start finds the htpasswd file and leaves it and the password alone, silently.
	before, _ := os.ReadFile(cfg.HtpasswdPath())
	ts2 := startServer(t, cfg)
	after, _ := os.ReadFile(cfg.HtpasswdPath())
	if !bytes.Equal(before, after) {
		t.Error("an existing htpasswd file was modified")
	}
	if ts2.password != ts.password {
		t.Error("the admin password file was rewritten on restart")
	}
	if ts2.notices.String() != "" {
		t.Errorf("second start printed a notice: %q", ts2.notices.String())
	}
}

func TestExistingHtpasswdIsKept(t *testing.T) {
	cfg := testConfig(t)
	f := htpasswd.New()
	if err := f.Set("alice", "alice-password", 4); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(cfg.HtpasswdPath()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(cfg.HtpasswdPath())
	ts := startServer(t, cfg)
	after, _ := os.ReadFile(cfg.HtpasswdPath())
	if !bytes.Equal(before, after) {
		t.Error("existing htpasswd file modified")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, AdminPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("admin password file created although htpasswd existed: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/v2/", nil)
	req.SetBasicAuth("alice", "alice-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("alice: status %d, want 200", resp.StatusCode)
	}
}

func TestPushPullRestart(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(ts.Addr().String()+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(ts.auth())); err != nil {
		t.Fatalf("push: %v", err)
	}
	want := digests(t, img)
	if diff := cmp.Diff(want, digests(t, pull(t, ref, ts.auth()))); diff != "" {
		t.Errorf("pulled digests differ (-pushed +pulled):\n%s", diff)
	}
	if _, err := remote.Image(ref); err == nil {
		t.Error("anonymous pull succeeded")
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	ts2 := startServer(t, cfg)
	ref2, _ := name.ParseReference(ts2.Addr().String()+"/team/app:v1", name.Insecure)
	if diff := cmp.Diff(want, digests(t, pull(t, ref2, ts2.auth()))); diff != "" {
		t.Errorf("after restart (-pushed +pulled):\n%s", diff)
	}
}

func pull(t *testing.T, ref name.Reference, a authn.Authenticator) v1.Image {
	t.Helper()
	img, err := remote.Image(ref, remote.WithAuth(a))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// digests lists the manifest digest then every layer's digest, reading each layer fully (which verifies it).
func digests(t *testing.T, img v1.Image) []string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{d.String()}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		rc.Close()
		ld, _ := l.Digest()
		out = append(out, ld.String())
	}
	return out
}
