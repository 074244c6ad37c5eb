package access

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

const pullOnly = "rules:\n  - users: [ci]\n    repos: ['**']\n    actions: [pull]\n"
const pushToo = "rules:\n  - users: [ci]\n    repos: ['**']\n    actions: [pull, push]\n"

// replaceFile replaces the file by rename, as the CLI and Kubernetes volumes do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLiveReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access-policy.yaml")
	replaceFile(t, path, pullOnly)
	var logs lockedbuf.Buffer
	reg := prometheus.NewRegistry()
	l, err := Load(LiveOptions{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg,
		PollInterval: 50 * time.Millisecond, quiet: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Policy().Allows("ci", "app", Push) {
		t.Fatal("ci may push under the pull-only policy")
	}

	replaceFile(t, path, pushToo)
	waitFor(t, "the push policy", func() bool { return l.Policy().Allows("ci", "app", Push) })

	// A bad version is reported and the last good policy stays.
	replaceFile(t, path, "rules:\n  - users: [ci]\n    repos: ['**']\n    actions: [pul]\n")
	failures := func() float64 {
		return testutil.ToFloat64(l.bad)
	}
	waitFor(t, "the failed reload", func() bool { return failures() == 1 })
	if !l.Policy().Allows("ci", "app", Push) {
		t.Error("a bad policy file replaced the last good one")
	}
	if !strings.Contains(logs.String(), `line 4: actions: unknown action \"pul\"`) {
		t.Errorf("log does not name the bad line:\n%s", logs.String())
	}
	// Reported once, not at every poll.
	time.Sleep(200 * time.Millisecond)
	if got := failures(); got != 1 {
		t.Errorf("failed reloads = %v, want 1", got)
	}

	// A removed file keeps the policy too; a good file back is loaded again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if !l.Policy().Allows("ci", "app", Push) {
		t.Error("removing the policy file dropped the last good policy")
	}
	replaceFile(t, path, pullOnly)
	waitFor(t, "the pull-only policy again", func() bool { return !l.Policy().Allows("ci", "app", Push) })

	// An in-place rewrite is loaded once it has settled.
	if err := os.WriteFile(path, []byte(pushToo), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the in-place rewrite", func() bool { return l.Policy().Allows("ci", "app", Push) })
	if n, err := testutil.GatherAndCount(reg, "registry_kit_access_policy_reloads_total"); err != nil || n != 2 {
		t.Errorf("reload metric series = %d (%v), want 2", n, err)
	}
}

func TestLoadRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	replaceFile(t, path, "rules:\n  - users: [ci]\n    repos: ['**']\n")
	_, err := Load(LiveOptions{Path: path})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2: the rule has no actions") {
		t.Errorf("Load error = %v, want the file and line named", err)
	}
	if _, err := Load(LiveOptions{Path: filepath.Join(t.TempDir(), "missing.yaml")}); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
