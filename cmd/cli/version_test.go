package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// setVersion sets the ldflags-stamped Version and Commit for one test.
func setVersion(t *testing.T, version, commit string) {
	t.Helper()
	oldV, oldC := Version, Commit
	Version, Commit = version, commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })
}

func TestVersionJSON(t *testing.T) {
	setVersion(t, "v1.2.3", "0123abc")
	out, _, err := runCLI(t, "", "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, out)
	}
	delete(got, "modified") // depends on the tree the test binary was built from
	// A test binary's build info has no dependency list (the e2e tier checks the real binary's distributionVersion).
	if diff := cmp.Diff(map[string]any{
		"version": "v1.2.3", "commit": "0123abc", "goVersion": runtime.Version(),
		"platform": runtime.GOOS + "/" + runtime.GOARCH,
	}, got); diff != "" {
		t.Errorf("version -o json (-want +got):\n%s", diff)
	}
	out, _, err = runCLI(t, "", "version")
	if err != nil || out != "registry-kit v1.2.3\n" {
		t.Errorf("version printed %q, %v", out, err)
	}
	if _, _, err := runCLI(t, "", "version", "-o", "yaml"); err == nil || err.Error() != `--output "yaml": must be json, or not given for one line` {
		t.Errorf("version -o yaml: %v", err)
	}
}

// TestVersionFrom: what a real binary's build information gives when no ldflags were set.
func TestVersionFrom(t *testing.T) {
	setVersion(t, "", "")
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/registry-kit/registry-kit", Version: "v1.5.0"},
		Deps: []*debug.Module{
			{Path: "github.com/distribution/reference", Version: "v0.6.0"},
			{Path: "github.com/distribution/distribution/v3", Version: "v3.1.2"},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "feedface"}, {Key: "vcs.modified", Value: "true"}},
	}
	want := versionInfo{Version: "v1.5.0", Commit: "feedface", Modified: true, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Distribution: "v3.1.2"}
	if diff := cmp.Diff(want, versionFrom(bi)); diff != "" {
		t.Errorf("versionFrom (-want +got):\n%s", diff)
	}
	bi.Deps[1].Replace = &debug.Module{Path: "example.com/fork", Version: "v3.1.3-fork"}
	if got := versionFrom(bi).Distribution; got != "v3.1.3-fork" {
		t.Errorf("replaced distribution module: %q, want the replacement's version", got)
	}
	if got := versionFrom(nil).Version; got != "(devel)" {
		t.Errorf("no build info: version %q, want (devel)", got)
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "# bash completion V2 for registry-kit"},
		{"zsh", "#compdef registry-kit"},
		{"fish", "# fish completion for registry-kit"},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			out, _, err := runCLI(t, "", "completion", tc.shell)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("completion %s does not contain %q", tc.shell, tc.want)
			}
		})
	}
	// Completion of subcommands works through cobra's hidden __complete command, which the scripts call.
	out, _, err := runCLI(t, "", "__complete", "ima")
	if err != nil || !strings.Contains(out, "image") {
		t.Errorf("__complete ima: %q, %v", out, err)
	}
}

// TestDefaultImage: a release binary defaults --image to its own public image; a development build to the local tag.
func TestDefaultImage(t *testing.T) {
	for _, tc := range []struct{ name, version, want string }{
		{name: "release", version: "v1.4.0", want: "image: ghcr.io/registry-kit/registry-kit:v1.4.0"},
		{name: "untagged commit", version: "a47ce51-dirty", want: "image: registry-kit:dev"},
		{name: "no version", version: "", want: "image: registry-kit:dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setVersion(t, tc.version, "")
			out, _, err := runGenerate(t, "", "--external-secrets")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "        "+tc.want+"\n") {
				t.Errorf("generate with version %q: no %q in\n%s", tc.version, tc.want, out)
			}
		})
	}
}
