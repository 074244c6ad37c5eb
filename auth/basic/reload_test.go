package basic

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestMalformedReloadKeepsPreviousFile(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice"})
	var logs lockedbuf.Buffer
	c, _, reg := newTestController(t, Options{
		Path: path, PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep alice's line but add one with an MD5 hash and a line that looks like a pasted password.
	mustWrite(t, path, string(data)+"bob:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\n")
	eventually(t, reloadWait, "no failed reload counted", func() bool {
		return counter(t, reg, "registry_kit_auth_reloads_total", "failure") == 1
	})
	if !authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice rejected after a failed reload; the previous file should stay in effect")
	}
	if !strings.Contains(logs.String(), "line 2") || !strings.Contains(logs.String(), "only bcrypt") {
		t.Errorf("reload error log does not name the line and the problem")
	}
	if strings.Contains(logs.String(), "BJqWWEGh6") || strings.Contains(logs.String(), "pw-alice") {
		t.Error("log output contains a hash or a password")
	}
	time.Sleep(200 * time.Millisecond)
	if got := counter(t, reg, "registry_kit_auth_reloads_total", "failure"); got != 1 {
		t.Errorf("the same bad file was reloaded %v times, want once", got)
	}

	// Fixing the file takes effect.
	writeUsers(t, path, map[string]string{"bob": "pw-bob"})
	eventually(t, reloadWait, "fixed file not loaded", func() bool {
		return authorized(t, c, "10.0.0.1", "bob", "pw-bob")
	})
	if authorized(t, c, "10.0.0.1", "alice", "pw-alice") {
		t.Error("alice still accepted after the fixed file removed her")
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
		{"bad limit", Options{Realm: "r", Path: bad, UserLimit: Limit{Burst: 0, Every: time.Second}}, "failure limits need a burst of at least 1"},
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

// TestInPlaceWriteIsNotLoadedHalfWritten truncates the file and writes it back slowly, as an in-place writer on a
// busy machine does: the empty and half-written versions must never be loaded (they parse cleanly with users missing).
func TestInPlaceWriteIsNotLoadedHalfWritten(t *testing.T) {
	path := tempPath(t)
	writeUsers(t, path, map[string]string{"alice": "pw-alice", "bob": "pw-bob"})
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A long quiet period keeps the test meaningful when this shared machine stretches the writer's 80ms pauses.
	c, _, reg := newTestController(t, Options{Path: path, PollInterval: 20 * time.Millisecond, quiet: time.Second})

	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	half := bytes.IndexByte(full, '\n') + 1 // alice's line only
	for _, part := range [][]byte{nil, full[:half], full[half:]} {
		if _, err := fh.Write(part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond) // each state is seen by several polls and events
		if !authorized(t, c, "10.0.0.1", "bob", "pw-bob") {
			t.Fatalf("bob rejected after writing %d bytes: a half-written file was loaded (reloads %v)", len(part), counter(t, reg, "registry_kit_auth_reloads_total", "success"))
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, reloadWait, "the rewritten file was not loaded", func() bool {
		return counter(t, reg, "registry_kit_auth_reloads_total", "success") == 1
	})
	time.Sleep(1500 * time.Millisecond)
	if got := counter(t, reg, "registry_kit_auth_reloads_total", "success"); got != 1 {
		t.Errorf("reloads_total{success} = %v, want 1 (only the complete file)", got)
	}
}
