package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// runHtpasswd runs `registry-kit htpasswd ARGS` with stdin and returns stdout and the error.
func runHtpasswd(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"htpasswd"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestHtpasswdCommands(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	steps := []struct {
		name    string
		stdin   string
		args    []string
		wantOut string
		wantErr string
	}{
		{"add creates the file", "pw-alice\n", []string{"add", "--file", file, "--user", "alice", "--password-stdin", "--cost", "4"},
			`added user "alice" in ` + file + "\n", ""},
		{"add second user", "pw-bob\r\n", []string{"add", "--file", file, "--user", "bob", "--password-stdin", "--cost", "4"},
			`added user "bob" in ` + file + "\n", ""},
		{"update", "pw-alice-2", []string{"add", "--file", file, "--user", "alice", "--password-stdin", "--cost", "4"},
			`updated password of user "alice" in ` + file + "\n", ""},
		{"list", "", []string{"list", "--file", file}, "alice\nbob\n", ""},
		{"verify ok", "pw-alice-2\n", []string{"verify", "--file", file, "--user", "alice", "--password-stdin"},
			`password for user "alice" is correct` + "\n", ""},
		{"verify old password", "pw-alice\n", []string{"verify", "--file", file, "--user", "alice", "--password-stdin"},
			"", "user or password does not match"},
		{"verify unknown user says the same", "pw-alice-2\n", []string{"verify", "--file", file, "--user", "zed", "--password-stdin"},
			"", "user or password does not match"},
		{"delete", "", []string{"delete", "--file", file, "--user", "alice"}, `deleted user "alice" from ` + file + "\n", ""},
		{"delete again", "", []string{"delete", "--file", file, "--user", "alice"}, "",
			`deleting user "alice" from ` + file + ": no such user"},
		{"list after delete", "", []string{"list", "--file", file}, "bob\n", ""},
		{"password on argv refused", "", []string{"add", "--file", file, "--user", "carol", "--password", "pw-carol"}, "",
			"--password: passwords are not accepted on the command line; use --password-stdin or the prompt"},
		{"no terminal and no --password-stdin", "pw\n", []string{"add", "--file", file, "--user", "carol"}, "",
			"no password: standard input is not a terminal; pass --password-stdin and pipe the password in"},
		{"empty stdin", "", []string{"add", "--file", file, "--user", "carol", "--password-stdin"}, "",
			"--password-stdin: no password on standard input"},
		{"bad flags together", "", []string{"add", "--user", "a:b", "--cost", "40", "--password-stdin"}, "",
			"--file: is required\n--user: user name contains ':'\n--cost: 40 is out of bcrypt's range 4-31"},
		{"missing user", "", []string{"delete", "--file", file}, "", "--user: is required"},
		{"list missing file", "", []string{"list", "--file", file + ".missing"}, "", "opening htpasswd file: open " + file + ".missing: no such file or directory"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, err := runHtpasswd(t, s.stdin, s.args...)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(s.wantErr, gotErr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(s.wantOut, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if strings.Contains(out+gotErr, "pw-") {
				t.Error("a password appears in the output")
			}
		})
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	f, err := htpasswd.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("bob", "pw-bob") {
		t.Error("bob's password (given with a CRLF line ending) does not verify")
	}
}

func TestHtpasswdAddDefaultCost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	if _, err := runHtpasswd(t, "pw\n", "add", "--file", file, "--user", "alice", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "alice:$2a$10$") {
		t.Errorf("entry does not use bcrypt cost 10 by default")
	}
}
