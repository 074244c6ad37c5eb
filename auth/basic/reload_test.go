package basic

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

// reloadWait bounds how long a change may take to be noticed: fsnotify is immediate, polling runs every 50ms here.
const reloadWait = 3 * time.Second

func TestReloadOnWriteAndRename(t *testing.T) {
	for _, notify := range []bool{true, false} {
		name := map[bool]string{true: "fsnotify", false: "polling"}[notify]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "htpasswd")
			writeUsers(t, path, map[string]string{"alice": "pw-alice"})
			poll := time.Hour
			if !notify {
				poll = 50 * time.Millisecond
			}
			c, _, reg := newTestController(t, Options{Path: path, PollInterval: poll, disableNotify: !notify})
			if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
				t.Fatal("alice rejected before any change")
			}

			// In-place write (same inode), as `htpasswd -B FILE USER` or an editor without backup does.
			other := filepath.Join(dir, "other")
			writeUsers(t, other, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
			data, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, path, string(data))
			eventually(t, reloadWait, "bob not accepted after an in-place write", func() bool {
				return authorized(t, c, "10.0.0.1", "bob", "pw-bob")
			})

			// Atomic rename of a new file over the old one; alice is removed while her credential is cached.
			writeUsers(t, other, map[string]string{"bob": "pw-bob"})
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
			eventually(t, reloadWait, "alice still accepted after being removed", func() bool {
				return !authorized(t, c, "10.0.0.1", "alice", "pw-alice")
			})
			if !authorized(t, c, "10.0.0.1", "bob", "pw-bob") {
				t.Error("bob rejected after the rename")
			}
			if got := counter(t, reg, "registry_kit_auth_reloads_total", "success"); got < 2 {
				t.Errorf("reloads_total{success} = %v, want >= 2", got)
			}
		})
	}
}

// k8sSecretDir builds the layout the kubelet makes for a Secret volume:
// dir/..<ts>/htpasswd, dir/..data -> ..<ts>, dir/htpasswd -> ..data/htpasswd.
type k8sSecretDir struct {
	t   *testing.T
	dir string
	n   int
}

func newK8sSecretDir(t *testing.T, users map[string]string) *k8sSecretDir {
	k := &k8sSecretDir{t: t, dir: t.TempDir()}
	ts := k.writeVersion(users)
	if err := os.Symlink(ts, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "htpasswd"), filepath.Join(k.dir, "htpasswd")); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *k8sSecretDir) path() string { return filepath.Join(k.dir, "htpasswd") }

func (k *k8sSecretDir) writeVersion(users map[string]string) string {
	k.n++
	ts := "..2026_11_27_21_00_0" + string(rune('0'+k.n)) + ".123456789"
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		k.t.Fatal(err)
	}
	writeUsers(k.t, filepath.Join(k.dir, ts, "htpasswd"), users)
	return ts
}

// swap publishes a new version the way the kubelet's AtomicWriter does: a new timestamped directory, a temporary
// symlink to it, renamed over ..data, then the old directory removed.
func (k *k8sSecretDir) swap(users map[string]string) {
	old, err := os.Readlink(filepath.Join(k.dir, "..data"))
	if err != nil {
		k.t.Fatal(err)
	}
	ts := k.writeVersion(users)
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(k.dir, old)); err != nil {
		k.t.Fatal(err)
	}
}

func TestReloadOnKubernetesSecretSwap(t *testing.T) {
	for _, notify := range []bool{true, false} {
		name := map[bool]string{true: "fsnotify", false: "polling"}[notify]
		t.Run(name, func(t *testing.T) {
			k := newK8sSecretDir(t, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
			poll := time.Hour
			if !notify {
				poll = 50 * time.Millisecond
			}
			c, calls, _ := newTestController(t, Options{Path: k.path(), PollInterval: poll, disableNotify: !notify})
			for _, u := range []string{"alice", "bob"} {
				if !authorized(t, c, "10.0.0.1", u, "pw-"+u) {
					t.Fatalf("%s rejected before the swap", u)
				}
			}
			before := calls.Load()
			if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") || calls.Load() != before {
				t.Fatal("alice's credential is not cached")
			}

			k.swap(map[string]string{"bob": "pw-bob-2", "carol": "pw-carol"})
			eventually(t, reloadWait, "alice's cached credential still accepted after the swap removed her", func() bool {
				return !authorized(t, c, "10.0.0.1", "alice", "pw-alice")
			})
			if authorized(t, c, "10.0.0.1", "bob", "pw-bob") {
				t.Error("bob's old password still accepted")
			}
			for _, u := range []string{"bob", "carol"} {
				pw := map[string]string{"bob": "pw-bob-2", "carol": "pw-carol"}[u]
				if !authorized(t, c, "10.0.0.2", u, pw) {
					t.Errorf("%s's new password rejected", u)
				}
			}

			// A second swap works too: the watch follows the new target directory.
			k.swap(map[string]string{"dave": "pw-dave"})
			eventually(t, reloadWait, "dave not accepted after the second swap", func() bool {
				return authorized(t, c, "10.0.0.3", "dave", "pw-dave")
			})
		})
	}
}

// md5Line is an entry Apache's `htpasswd -bnm carol x` printed: a scheme registry-kit refuses.
const md5Line = "carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/"

// newManualController is a controller whose watcher never fires: the test calls reloadIfChanged itself, on a fake
// clock, so nothing depends on how fast this machine notices a change.
func newManualController(t *testing.T, path string, logs *lockedbuf.Buffer) (*Controller, *fakeClock, *atomic.Int64, *prometheus.Registry) {
	t.Helper()
	clk := newFakeClock()
	c, calls, reg := newTestController(t, Options{
		Path: path, PollInterval: time.Hour, disableNotify: true, now: clk.Now,
		PairLimit: Limit{Burst: 3, Every: time.Hour},
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	})
	return c, clk, calls, reg
}

// TestBadLineDoesNotKeepRemovedUserIn replaces the file with one that removes bob and adds an Apache MD5 line: bob
// loses access at once (his cached login too), the good lines are in effect, and the bad line is reported by number
// in the log and the metrics, without its hash.
func TestBadLineDoesNotKeepRemovedUserIn(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "rename", true: "in place"}[inPlace], func(t *testing.T) {
			path := tempPath(t)
			writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
			var logs lockedbuf.Buffer
			c, clk, calls, reg := newManualController(t, path, &logs)
			for _, u := range []string{"alice", "bob"} {
				if !authorized(t, c, "10.0.0.1", u, "pw-"+u) {
					t.Fatalf("%s rejected before the change", u)
				}
			}
			f, err := htpasswd.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			f.Delete("bob")
			data := string(f.Bytes()) + md5Line + "\n" + "dave:$2y$04$tooshort\n"
			if inPlace {
				mustWrite(t, path, data)
			} else {
				tmp := path + ".new"
				mustWrite(t, tmp, data)
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			}
			for c.reloadIfChanged(clk.Now()) > 0 {
				clk.Advance(quietPeriod)
			}
			before := calls.Load()
			if authorized(t, c, "10.0.0.1", "bob", "pw-bob") {
				t.Error("removed bob is still accepted: the new file's bad lines kept the old file in effect")
			}
			if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
				t.Error("alice, whose line is good, is rejected")
			}
			if got := calls.Load() - before; got != 1 { // bob's check; alice's login stayed cached
				t.Errorf("%d bcrypt runs after the reload, want 1: alice's unchanged entry must keep her cached login", got)
			}
			if authorized(t, c, "10.0.0.2", "carol", "x") {
				t.Error("carol's MD5 line was accepted")
			}
			out := logs.String()
			for _, want := range []string{"line=2", "line=3", "Apache MD5", "malformed bcrypt hash"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			for _, secret := range []string{"BJqWWEGh6", "tooshort", "pw-alice", "pw-bob"} {
				if strings.Contains(out, secret) {
					t.Errorf("log contains a hash or password (%s...)", secret[:3])
				}
			}
			got := map[string]float64{
				"partial": counter(t, reg, "registry_kit_auth_reloads_total", "partial"),
				"failure": counter(t, reg, "registry_kit_auth_reloads_total", "failure"),
				"users":   gauge(t, reg, "registry_kit_auth_htpasswd_users", ""),
				"bad":     gauge(t, reg, "registry_kit_auth_htpasswd_bad_lines", ""),
				"line 2":  gauge(t, reg, "registry_kit_auth_htpasswd_bad_line", "2"),
				"line 3":  gauge(t, reg, "registry_kit_auth_htpasswd_bad_line", "3"),
			}
			want := map[string]float64{"partial": 1, "failure": 0, "users": 1, "bad": 2, "line 2": 1, "line 3": 1}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			// The same version is not reported again.
			if c.reloadIfChanged(clk.Now()); counter(t, reg, "registry_kit_auth_reloads_total", "partial") != 1 {
				t.Error("the same bad file was reloaded again")
			}

			// Fixing the file takes effect.
			writeUsers(t, path, map[string]string{"bob": "pw-bob"})
			c.reloadIfChanged(clk.Now())
			if !authorized(t, c, "10.0.0.1", "bob", "pw-bob") || authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
				t.Error("the fixed file is not in effect")
			}
			if got := gauge(t, reg, "registry_kit_auth_htpasswd_bad_lines", ""); got != 0 {
				t.Errorf("bad_lines = %v after the fix, want 0", got)
			}
		})
	}
}

// TestMissingFileRefusesEveryone deletes the file (and then makes it unreadable): every user is refused, cached
// logins included, until the file is back, and the log and the metrics say so.
func TestMissingFileRefusesEveryone(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	var logs lockedbuf.Buffer
	c, clk, _, reg := newManualController(t, path, &logs)
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Fatal("alice rejected")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Gone for less than the quiet period (a delete-and-recreate): nothing changes yet.
	if retry := c.reloadIfChanged(clk.Now()); retry != quietPeriod {
		t.Errorf("first look at the missing file asks to look again in %v, want %v", retry, quietPeriod)
	}
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice refused before the file was gone for the quiet period")
	}
	clk.Advance(quietPeriod)
	c.reloadIfChanged(clk.Now())
	if authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice's cached login still accepted with the htpasswd file deleted")
	}
	for range 5 { // a client retrying while the file is gone; more than its failure budget
		if authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
			t.Fatal("alice accepted with the htpasswd file deleted")
		}
	}
	if !strings.Contains(logs.String(), "htpasswd file missing or unreadable: refusing every user") {
		t.Errorf("the log does not say the file is missing:\n%s", logs.String())
	}
	if r, f := gauge(t, reg, "registry_kit_auth_htpasswd_readable", ""), counter(t, reg, "registry_kit_auth_reloads_total", "failure"); r != 0 || f != 1 {
		t.Errorf("readable = %v, reloads_total{failure} = %v; want 0 and 1", r, f)
	}

	// Back: in effect at once.
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	c.reloadIfChanged(clk.Now())
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice rejected after the file came back: her retries while it was gone spent her failure budget")
	}
	if r := gauge(t, reg, "registry_kit_auth_htpasswd_readable", ""); r != 1 || !strings.Contains(logs.String(), "htpasswd file readable again") {
		t.Errorf("readable = %v after the file came back, or no log line says so", r)
	}

	// A path that cannot be read as a file (here a directory; root reads any mode) refuses everyone too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	for c.reloadIfChanged(clk.Now()) > 0 { // the directory may reuse the file's inode: then it counts as rewritten in place
		clk.Advance(quietPeriod)
	}
	if authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice accepted while the htpasswd path is unreadable")
	}
	if f := counter(t, reg, "registry_kit_auth_reloads_total", "failure"); f != 2 {
		t.Errorf("reloads_total{failure} = %v, want 2", f)
	}
}

func TestNewErrors(t *testing.T) {
	bad := tempPath(t)
	mustWrite(t, bad, "carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\n")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing realm and path", Options{}, "configuring registry-kit access controller: \"realm\" must be set\n\"path\" must be set to an htpasswd file"},
		{"missing file", Options{Realm: "r", Path: filepath.Join(t.TempDir(), "nope")}, "no such file or directory"},
		{"md5 file", Options{Realm: "r", Path: bad}, "line 1: user \"carol\": password hash uses Apache MD5 ($apr1$); only bcrypt is supported"},
		{"bad limit", Options{Realm: "r", Path: bad, PairLimit: Limit{Burst: 0, Every: time.Second}}, "failure limits need a burst of at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if err == nil {
				_ = c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestInPlaceWriteIsNotLoadedHalfWritten truncates the file and writes it back in parts, as an in-place writer
// does: the empty and half-written versions must never be loaded (they parse cleanly with users missing); the
// complete file is loaded once it has stayed unchanged for the quiet period. The quiet period is measured on a fake
// clock, so a slow machine cannot make the test pass or fail.
func TestInPlaceWriteIsNotLoadedHalfWritten(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedbuf.Buffer
	c, clk, _, reg := newManualController(t, path, &logs)

	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	half := bytes.IndexByte(full, '\n') + 1 // alice's line only
	for _, part := range [][]byte{nil, full[:half], full[half:]} {
		if _, err := fh.Write(part); err != nil {
			t.Fatal(err)
		}
		// Each state is looked at several times within the quiet period.
		for range 3 {
			if retry := c.reloadIfChanged(clk.Now()); retry <= 0 {
				t.Fatalf("after writing %d bytes: no retry asked for while the file changes", len(part))
			}
			clk.Advance(quietPeriod / 4)
		}
		if !authorized(t, c, "10.0.0.1", "bob", "pw-bob") {
			t.Fatalf("bob rejected after writing %d bytes: a half-written file was loaded", len(part))
		}
		// The write of the next part resets the wait even if it comes much later on the clock.
	}
	if got := counter(t, reg, "registry_kit_auth_reloads_total", "success"); got != 0 {
		t.Fatalf("reloads_total{success} = %v while the file was being written", got)
	}
	clk.Advance(quietPeriod)
	if retry := c.reloadIfChanged(clk.Now()); retry != 0 {
		t.Fatalf("the complete file is still waited for (%v) after the quiet period", retry)
	}
	for range 3 {
		c.reloadIfChanged(clk.Now())
	}
	if got := counter(t, reg, "registry_kit_auth_reloads_total", "success"); got != 1 {
		t.Errorf("reloads_total{success} = %v, want 1 (only the complete file)", got)
	}
}
