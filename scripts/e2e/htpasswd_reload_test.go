//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// htpRunEnv is htpRun with extra environment variables.
func htpRunEnv(t *testing.T, env []string, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// metricValue reads one series (name and labels exactly as exposed, e.g. `x_total{result="failure"}`) from the
// server's /metrics; a series not exposed yet is 0.
func metricValue(t *testing.T, s *serveInstance, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("reading metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// waitMetric waits up to 15s until series reaches at least want.
func waitMetric(t *testing.T, s *serveInstance, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for metricValue(t, s, series) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %v within 15s (now %v)", series, want, metricValue(t, s, series))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus waits up to 15s until GET /v2/ as user answers want.
func waitStatus(t *testing.T, addr, user, pass string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for basicStatus(t, addr, user, pass) != want {
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statusFrom is the status of GET /v2/ with Basic credentials over a connection from the loopback address src.
func statusFrom(t *testing.T, src net.IP, addr, user, pass string) int {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}).DialContext,
	}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	req.SetBasicAuth(user, pass)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /v2/ from %s: %v", src, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// floodConns is how many connections the flood uses: throttled answers take as long as a bcrypt check, so each
// connection sends a few a second.
const floodConns = 16

// wrongPasswordFlood sends wrong passwords for user from 127.0.0.2 on floodConns connections until stop is called,
// which returns how many were sent and how many got an answer other than 401.
func wrongPasswordFlood(t *testing.T, addr, user string) (stop func() (sent, not401 int64)) {
	attacker := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
		MaxIdleConnsPerHost: floodConns,
	}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var sent, bad atomic.Int64
	for w := range floodConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
				req.SetBasicAuth(user, fmt.Sprintf("wrong-%d-%d", w, i))
				resp, err := attacker.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != http.StatusUnauthorized {
					bad.Add(1)
				}
			}
		}()
	}
	var once sync.Once
	stop = func() (int64, int64) {
		once.Do(func() { close(done); wg.Wait(); attacker.CloseIdleConnections() })
		return sent.Load(), bad.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestHtpasswdNoLockoutByUserName floods `registry-kit serve` with wrong passwords for admin from 127.0.0.2 and
// checks with real clients from other loopback addresses that admin's right password never gets a 401: a first
// login with skopeo, a logged-in skopeo and crane pulling again and again, also across a reload that adds an
// unrelated user, and a first login with a changed password (curl from 127.0.0.3, skopeo from 127.0.0.1).
func TestHtpasswdNoLockoutByUserName(t *testing.T) {
	skopeo, crane, curl := needTool(t, "skopeo"), needTool(t, "crane"), needTool(t, "curl")
	rk := binary(t)
	file := filepath.Join(t.TempDir(), "htpasswd")
	add := func(user, pass string) {
		t.Helper()
		if out, err := htpRun(t, pass+"\n", rk, "htpasswd", "add", "--file", file, "--user", user, "--password-stdin"); err != nil {
			t.Fatalf("htpasswd add %s: %v: %s", user, err, out)
		}
	}
	add("admin", "admin-pw-1")
	add("pusher", "pusher-pw") // pushes the image, so that admin's first login below is not cached already
	s := startServe(t, "--htpasswd", file)
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/team/app:v1"
	tag, _ := name.NewTag(ref, name.Insecure)
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "pusher", Password: "pusher-pw"})); err != nil {
		t.Fatalf("pushing as pusher: %v", err)
	}

	floodStart := time.Now()
	stopFlood := wrongPasswordFlood(t, s.Addr, "admin")
	waitMetric(t, s, `registry_kit_auth_requests_total{result="throttled"}`, 1)
	throttledBefore := metricValue(t, s, `registry_kit_auth_requests_total{result="throttled"}`)

	// A first login while admin's wrong passwords are being throttled.
	if hits, misses := metricValue(t, s, `registry_kit_auth_cache_total{result="hit"}`), metricValue(t, s, `registry_kit_auth_cache_total{result="miss"}`); hits+misses == 0 {
		t.Fatal("no cache lookups counted: the metrics are not the auth ones")
	}
	configDir := t.TempDir()
	authfile := filepath.Join(configDir, "config.json") // skopeo's auth file is crane's docker config
	login := func(pass string) (string, error) {
		return htpRun(t, pass, skopeo, "login", "--tls-verify=false", "--authfile", authfile, "--username", "admin", "--password-stdin", s.Addr)
	}
	if out, err := login("admin-pw-1"); err != nil {
		t.Fatalf("skopeo login as admin from 127.0.0.1 during the flood: %v: %s", err, out)
	}
	var failures []string
	pullAll := func(round string) {
		t.Helper()
		for i := range 5 {
			if out, err := htpRun(t, "", skopeo, "inspect", "--tls-verify=false", "--authfile", authfile, "--raw", "docker://"+ref); err != nil {
				failures = append(failures, fmt.Sprintf("%s: skopeo inspect %d: %v: %.300s", round, i, err, out))
			}
			cmd := []string{"manifest", "--insecure", ref}
			if out, err := htpRunEnv(t, []string{"DOCKER_CONFIG=" + configDir}, crane, cmd...); err != nil {
				failures = append(failures, fmt.Sprintf("%s: crane manifest %d: %v: %.300s", round, i, err, out))
			}
		}
	}
	pullAll("logged in, during the flood")

	// An unrelated user is added: admin's logged-in clients stay logged in.
	reloads := metricValue(t, s, `registry_kit_auth_reloads_total{result="success"}`)
	add("bob", "bob-pw")
	waitMetric(t, s, `registry_kit_auth_reloads_total{result="success"}`, reloads+1)
	pullAll("logged in, after a reload that added bob")
	hits := metricValue(t, s, `registry_kit_auth_cache_total{result="hit"}`)
	pullAll("logged in, cache hits")
	if metricValue(t, s, `registry_kit_auth_cache_total{result="hit"}`) <= hits {
		t.Error("the logged-in clients' requests after the reload were not cache hits")
	}

	// admin's password is changed: the new one works at its first try, from another address and from this one.
	reloads = metricValue(t, s, `registry_kit_auth_reloads_total{result="success"}`)
	add("admin", "admin-pw-2")
	waitMetric(t, s, `registry_kit_auth_reloads_total{result="success"}`, reloads+1)
	out, err := htpRun(t, "user = \"admin:admin-pw-2\"\n", curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
		"--interface", "127.0.0.3", "-K", "-", "http://"+s.Addr+"/v2/")
	if err != nil || strings.TrimSpace(out) != "200" {
		failures = append(failures, fmt.Sprintf("curl from 127.0.0.3 with admin's new password: %v, status %q", err, out))
	}
	if out, err := login("admin-pw-2"); err != nil {
		failures = append(failures, fmt.Sprintf("skopeo login with admin's new password: %v: %.300s", err, out))
	}
	if got := statusFrom(t, net.IPv4(127, 0, 0, 1), s.Addr, "admin", "admin-pw-1"); got != http.StatusUnauthorized {
		t.Errorf("admin's old password got %d after the change, want 401", got)
	}

	sent, not401 := stopFlood()
	rate := float64(sent) / time.Since(floodStart).Seconds()
	for _, f := range failures {
		t.Error(f)
	}
	if not401 != 0 {
		t.Errorf("%d of %d wrong passwords got an answer other than 401", not401, sent)
	}
	throttled := metricValue(t, s, `registry_kit_auth_requests_total{result="throttled"}`)
	t.Logf("%d wrong passwords for admin from 127.0.0.2 (%.0f/s, %v throttled) while admin's right password was used", sent, rate, throttled)
	// The server sets the pace of a flood (throttled answers take as long as bcrypt, checks of a failing client run
	// one at a time), so what matters is that it was being throttled all the while admin's clients worked.
	if throttled-throttledBefore < 5 {
		t.Errorf("only %v of the flood's requests were throttled while admin's clients ran", throttled-throttledBefore)
	}
	for _, secret := range []string{"admin-pw-1", "admin-pw-2", "bob-pw", "pusher-pw", "wrong-"} {
		if strings.Contains(s.Output(), secret) {
			t.Error("the server's log contains a password")
		}
	}
}

// TestHtpasswdBadLineAndDeletedFile edits the htpasswd file of a running `registry-kit serve`: a user removed in the
// same change that adds an Apache MD5 line (from Apache's own htpasswd -m) loses access at once while the good lines
// stay in effect, the bad line is reported by number in the log and the metrics; a deleted file refuses everyone,
// logged-in clients included, until it is back.
func TestHtpasswdBadLineAndDeletedFile(t *testing.T) {
	skopeo, apache := needTool(t, "skopeo"), needTool(t, "htpasswd")
	rk := binary(t)
	file := filepath.Join(t.TempDir(), "htpasswd")
	for _, u := range []string{"alice", "dave"} {
		if out, err := htpRun(t, u+"-pw\n", rk, "htpasswd", "add", "--file", file, "--user", u, "--password-stdin", "--cost", "5"); err != nil {
			t.Fatalf("htpasswd add %s: %v: %s", u, err, out)
		}
	}
	s := startServe(t, "--htpasswd", file)
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/team/app:v1"
	tag, _ := name.NewTag(ref, name.Insecure)
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
		t.Fatalf("pushing as alice: %v", err)
	}
	authfiles := map[string]string{}
	inspect := func(user string) (string, error) {
		return htpRun(t, "", skopeo, "inspect", "--tls-verify=false", "--authfile", authfiles[user], "--raw", "docker://"+ref)
	}
	for _, u := range []string{"alice", "dave"} {
		authfiles[u] = filepath.Join(t.TempDir(), "auth.json")
		if out, err := htpRun(t, u+"-pw", skopeo, "login", "--tls-verify=false", "--authfile", authfiles[u],
			"--username", u, "--password-stdin", s.Addr); err != nil {
			t.Fatalf("skopeo login as %s: %v: %s", u, err, out)
		}
		if out, err := inspect(u); err != nil {
			t.Fatalf("skopeo inspect as %s: %v: %s", u, err, out)
		}
	}

	// One change: dave removed, an MD5 entry for erin added by Apache's htpasswd -m (in place, as it edits).
	md5, err := htpRun(t, "", apache, "-bnm", "erin", "erin-pw")
	if err != nil || !strings.HasPrefix(md5, "erin:$apr1$") {
		t.Fatalf("htpasswd -bnm: %v, entry does not start with erin:$apr1$", err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(good)), "\n") {
		if !strings.HasPrefix(l, "dave:") {
			kept = append(kept, l)
		}
	}
	badLine := len(kept) + 1
	partial := metricValue(t, s, `registry_kit_auth_reloads_total{result="partial"}`)
	if err := os.WriteFile(file, []byte(strings.Join(kept, "\n")+"\n"+strings.TrimSpace(md5)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s.Addr, "dave", "dave-pw", http.StatusUnauthorized,
		"removed dave still accepted: a bad line in the new file kept the old file in effect")
	if got := metricValue(t, s, `registry_kit_auth_reloads_total{result="partial"}`); got != partial+1 {
		t.Errorf("reloads_total{result=\"partial\"} = %v, want %v", got, partial+1)
	}
	if out, err := inspect("dave"); err == nil {
		t.Error("skopeo inspect with removed dave's login succeeded: a bad line in the new file kept the old file in effect")
	} else if !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "authentication required") {
		t.Errorf("skopeo inspect as dave failed, but not with an authentication error: %.300s", out)
	}
	if out, err := inspect("alice"); err != nil {
		t.Errorf("skopeo inspect as alice, whose line is good: %v: %.300s", err, out)
	}
	if got := basicStatus(t, s.Addr, "erin", "erin-pw"); got != http.StatusUnauthorized {
		t.Errorf("erin's MD5 entry got %d, want 401", got)
	}
	if got := metricValue(t, s, fmt.Sprintf(`registry_kit_auth_htpasswd_bad_line{line="%d"}`, badLine)); got != 1 {
		t.Errorf("registry_kit_auth_htpasswd_bad_line{line=%q} = %v, want 1", strconv.Itoa(badLine), got)
	}
	if want := fmt.Sprintf("line=%d", badLine); !strings.Contains(s.Output(), want) || !strings.Contains(s.Output(), "Apache MD5") {
		t.Errorf("the server's log does not report %s as Apache MD5", want)
	}
	hash := strings.TrimPrefix(strings.TrimSpace(md5), "erin:$apr1$")
	for _, secret := range []string{hash, "alice-pw", "dave-pw", "erin-pw"} {
		if strings.Contains(s.Output(), secret) {
			t.Error("the server's log contains a password or hash")
		}
	}

	// The file is deleted: nobody gets in, not even alice's logged-in client, and the server says why.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s.Addr, "alice", "alice-pw", http.StatusUnauthorized, "alice still accepted with the htpasswd file deleted")
	if got := metricValue(t, s, `registry_kit_auth_reloads_total{result="failure"}`); got != 1 {
		t.Errorf("reloads_total{result=\"failure\"} = %v, want 1", got)
	}
	if got := metricValue(t, s, "registry_kit_auth_htpasswd_readable"); got != 0 {
		t.Errorf("registry_kit_auth_htpasswd_readable = %v with the file deleted, want 0", got)
	}
	if out, err := inspect("alice"); err == nil {
		t.Error("skopeo inspect with alice's login succeeded with the htpasswd file deleted")
	} else if !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "authentication required") {
		t.Errorf("skopeo inspect as alice failed, but not with an authentication error: %.300s", out)
	}
	if !strings.Contains(s.Output(), "htpasswd file missing or unreadable: refusing every user") {
		t.Error("the server's log does not say the htpasswd file is missing")
	}

	// Back: alice's stored login works again.
	if err := os.WriteFile(file, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, s, "registry_kit_auth_htpasswd_readable", 1)
	if out, err := inspect("alice"); err != nil {
		t.Errorf("skopeo inspect as alice after the file came back: %v: %.300s", err, out)
	}
}
