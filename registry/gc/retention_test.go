package gc_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/registry/gc"
)

func TestRetentionRemovals(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tags := []gc.TagInfo{ // v1 oldest ... v5 newest, latest pushed 40 days ago
		{Name: "v1", Pushed: now.Add(-50 * 24 * time.Hour)},
		{Name: "v2", Pushed: now.Add(-20 * 24 * time.Hour)},
		{Name: "v3", Pushed: now.Add(-10 * 24 * time.Hour)},
		{Name: "v4", Pushed: now.Add(-2 * 24 * time.Hour)},
		{Name: "v5", Pushed: now.Add(-time.Hour)},
		{Name: "latest", Pushed: now.Add(-40 * 24 * time.Hour)},
	}
	tests := []struct {
		name  string
		rules []gc.Rule
		repo  string
		want  map[string][]string
	}{
		{name: "no rule matches: everything kept", rules: []gc.Rule{{Repositories: "other/*", KeepLast: 1}}, repo: "app", want: nil},
		{name: "keep last 2", rules: []gc.Rule{{Repositories: "*", KeepLast: 2}}, repo: "team/app",
			want: map[string][]string{"v1": {"rule 1"}, "v2": {"rule 1"}, "v3": {"rule 1"}, "latest": {"rule 1"}}},
		{name: "keep within 15 days", rules: []gc.Rule{{Repositories: "team/*", KeepWithin: "360h"}}, repo: "team/app",
			want: map[string][]string{"v1": {"rule 1"}, "v2": {"rule 1"}, "latest": {"rule 1"}}},
		{name: "keep regex", rules: []gc.Rule{{Repositories: "*", KeepTags: "latest|v[45]"}}, repo: "app",
			want: map[string][]string{"v1": {"rule 1"}, "v2": {"rule 1"}, "v3": {"rule 1"}}},
		{name: "conditions of one rule add up", rules: []gc.Rule{{Repositories: "*", KeepLast: 1, KeepTags: "latest"}}, repo: "app",
			want: map[string][]string{"v1": {"rule 1"}, "v2": {"rule 1"}, "v3": {"rule 1"}, "v4": {"rule 1"}}},
		{name: "any matching rule keeps", repo: "team/app", rules: []gc.Rule{
			{Name: "recent", Repositories: "*", KeepLast: 1}, {Name: "releases", Repositories: "team/*", KeepTags: "v[12]"}},
			want: map[string][]string{"v3": {"recent", "releases"}, "v4": {"recent", "releases"}, "latest": {"recent", "releases"}}},
		{name: "pattern is whole-name", rules: []gc.Rule{{Repositories: "team", KeepLast: 1}}, repo: "team/app", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gc.Policy{Rules: tt.rules}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			got := p.Removals(tt.repo, tags, now)
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("removals (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetentionPolicyErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{name: "keeps nothing", yaml: "rules:\n- repositories: '*'\n", want: []string{"rules[0] (rule 1): keepLast, keepWithin, keepTags: a rule must keep something"}},
		{name: "bad fields", yaml: "rules:\n- keepLast: -1\n  keepWithin: soon\n  keepTags: '('\n",
			want: []string{"repositories: is required", "keepLast: must not be negative", `keepWithin: "soon" is not a positive duration`, "keepTags: error parsing regexp"}},
		{name: "unknown key", yaml: "rules:\n- repositories: '*'\n  keepLatest: 3\n", want: []string{`unknown field "keepLatest"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(f, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := gc.LoadPolicy(f)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Ten tags pushed to a real server; the policy keeps the three newest and v1: exactly those stay, and the blobs only
// the removed tags held go (with untagged deletion, once past the window).
func TestRetentionTenTags(t *testing.T) {
	s := newStore(t)
	for i := 1; i <= 10; i++ {
		s.push("app:v"+strconv.Itoa(i), image(t, 1))
		time.Sleep(10 * time.Millisecond) // distinct push times
	}
	p := gc.Policy{Rules: []gc.Rule{{Repositories: "app", KeepLast: 3, KeepTags: "v1"}}}
	later := func() time.Time { return time.Now().Add(time.Hour) }
	o := gc.Options{Window: 30 * time.Minute, Now: later, Retention: p, DeleteUntagged: true, DryRun: true}
	dry, err := gc.Collect(context.Background(), s.driver(), o)
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, r := range dry.RemovedTags {
		removed = append(removed, r.Tag)
	}
	if diff := cmp.Diff([]string{"v2", "v3", "v4", "v5", "v6", "v7"}, removed); diff != "" {
		t.Fatalf("dry run removes (-want +got):\n%s", diff)
	}
	o.DryRun = false
	rep, err := gc.Collect(context.Background(), s.driver(), o)
	if err != nil {
		t.Fatal(err)
	}
	left, err := remote.List(s.ref("app").Context(), s.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(left)
	if diff := cmp.Diff([]string{"v1", "v10", "v8", "v9"}, left); diff != "" {
		t.Errorf("tags left (-want +got):\n%s", diff)
	}
	// Six images of a manifest, a config and a layer each.
	if len(rep.Untagged) != 6 || len(rep.Blobs) != 18 {
		t.Errorf("removed %d manifests and %d blobs, want 6 and 18", len(rep.Untagged), len(rep.Blobs))
	}
	s.pullAll("app:v1", "app:v8", "app:v9", "app:v10")
}
