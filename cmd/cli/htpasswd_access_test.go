package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/auth/access"
)

func TestHtpasswdRoles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	policy := filepath.Join(dir, access.DefaultFileName)
	steps := []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
	}{
		{"plain user, no policy yet", []string{"add", "--file", file, "--user", "bob", "--password-stdin", "--cost", "4"},
			`added user "bob" in ` + file + "\n", ""},
		{"list without a policy", []string{"list", "--file", file}, "bob\n", ""},
		{"pull role for all", []string{"add", "--file", file, "--user", "puller", "--password-stdin", "--cost", "4", "--role", "pull"},
			`added user "puller" in ` + file + "\n" + `granted user "puller" pull (pull) on ** in ` + policy + "\n", ""},
		{"push role for team-a", []string{"add", "--file", file, "--user", "ci", "--password-stdin", "--cost", "4", "--role", "push", "--repos", "team-a/**"},
			`added user "ci" in ` + file + "\n" + `granted user "ci" push (pull,push) on team-a/** in ` + policy + "\n", ""},
		{"second pattern for ci", []string{"add", "--file", file, "--user", "ci", "--password-stdin", "--cost", "4", "--role", "pull", "--repos", "base/*"},
			`updated password of user "ci" in ` + file + "\n" + `granted user "ci" pull (pull) on base/* in ` + policy + "\n", ""},
		{"admin", []string{"add", "--file", file, "--user", "root", "--password-stdin", "--cost", "4", "--role", "admin"},
			`added user "root" in ` + file + "\n" + `granted user "root" admin (pull,push,delete) on ** in ` + policy + "\n", ""},
		{"a user added without a role after the policy exists", []string{"add", "--file", file, "--user", "eve", "--password-stdin", "--cost", "4"},
			`added user "eve" in ` + file + "\n", ""},
		// bob existed before the policy did: he keeps every right; eve came after it with no role: none.
		{"list with rights", []string{"list", "--file", file},
			"USER    RIGHTS\nbob     pull,push,delete on **\npuller  pull on **\nci      pull,push on team-a/**; pull on base/*\nroot    pull,push,delete on **\neve     none\n", ""},
		{"unknown role", []string{"add", "--file", file, "--user", "x", "--password-stdin", "--role", "owner"}, "",
			`--role: unknown role "owner" (want pull, push, admin or none)`},
		{"bad pattern", []string{"add", "--file", file, "--user", "x", "--password-stdin", "--role", "pull", "--repos", "a**"}, "",
			`--repos: repository pattern "a**": ** must be a whole segment, as in team-a/**`},
		{"repos without role", []string{"add", "--file", file, "--user", "x", "--password-stdin", "--repos", "a/**"}, "",
			"--repos: only with --role"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, err := runHtpasswd(t, "pw-"+s.name+"\n", s.args...)
			if s.wantErr != "" {
				if err == nil || err.Error() != s.wantErr {
					t.Fatalf("error = %v, want %q", err, s.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("htpasswd %v: %v", s.args, err)
			}
			if diff := cmp.Diff(s.wantOut, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
	// The file the CLI wrote is what serve loads.
	p, err := access.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Allows("ci", "team-a/app", access.Push) || p.Allows("ci", "team-b/app", access.Push) || p.Allows("puller", "x", access.Push) {
		t.Error("the written policy does not grant what the CLI said")
	}
	if fi, err := os.Stat(policy); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("policy file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	b, _ := os.ReadFile(policy)
	if strings.Contains(string(b), "pw-") {
		t.Error("a password reached the policy file")
	}
}
