package htpasswd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Hashes made by Apache's htpasswd (apache2-utils) with -B -C 4; the passwords are test-only.
const (
	aliceApache = "alice:$2y$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m" // s3cret-test
	bobApache   = "bob:$2y$04$XqBvcMPuB3wAjfgsIrxVMOsKPIcpEHHCXAuL4gasLRQD7L9/MSQlu"   // hunter2-test
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"missing colon", "# c\nsecretwithoutcolon\n", `line 2: missing ':' between user name and password hash`},
		{"empty user", ":$2y$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m", "line 1: user name is empty"},
		{"empty hash", "alice:", `line 1: user "alice" has an empty password hash`},
		{"whitespace in user", "al ice:$2y$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m", "line 1: user name contains whitespace"},
		{"control char in user", "al\x01ice:x", "line 1: user name contains a control character or invalid UTF-8"},
		{"apr1", "carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/", `line 1: user "carol": password hash uses Apache MD5 ($apr1$); only bcrypt is supported (create entries with htpasswd -B)`},
		{"sha1", "\n\ndave:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", `line 3: user "dave": password hash uses SHA-1 ({SHA}); only bcrypt is supported (create entries with htpasswd -B)`},
		{"sha512 crypt", "eve:$6$nDBhHPK2j/vFvQuc$ji/0CbiNQx8ySVLRMhvgx", `line 1: user "eve": password hash uses SHA-crypt ($5$/$6$); only bcrypt is supported (create entries with htpasswd -B)`},
		{"des crypt", "fred:EZwWnQubAZvgU", `line 1: user "fred": password hash uses DES crypt; only bcrypt is supported (create entries with htpasswd -B)`},
		{"plain text", "gina:hunter2hunter2", `line 1: user "gina": password hash uses an unrecognised scheme or a plain-text password; only bcrypt is supported (create entries with htpasswd -B)`},
		{"unknown bcrypt variant", "h:$2x$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m", `line 1: user "h": password hash uses an unknown bcrypt variant; only bcrypt is supported (create entries with htpasswd -B)`},
		{"truncated bcrypt", "alice:$2y$04$tP0KJS5QQLzlVwRuFcESUe", `line 1: user "alice": malformed bcrypt hash: 29 characters, want 60`},
		{"bad cost", "alice:$2y$4x$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m", `line 1: user "alice": malformed bcrypt hash: cost is not a number between 04 and 31`},
		{"cost too high", "alice:$2y$32$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m", `line 1: user "alice": malformed bcrypt hash: cost is not a number between 04 and 31`},
		{"bad alphabet", "alice:$2y$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3!", `line 1: user "alice": malformed bcrypt hash: salt and hash contain characters outside bcrypt's base64 alphabet`},
		{"duplicate", aliceApache + "\n#\n" + bobApache + "\n" + aliceApache, `line 4: duplicate user "alice", first defined on line 1`},
		{"too long", aliceApache + "\n" + strings.Repeat("x", maxLineLen+1), "line 2: longer than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.input))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error message (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "tP0KJS5QQ") || strings.Contains(err.Error(), "secretwithoutcolon") {
				t.Error("error message echoes a hash or secret")
			}
		})
	}
}

func TestParseApacheAndVerify(t *testing.T) {
	in := "# users\n\n" + aliceApache + "\r\n  " + bobApache + "  \n" +
		"carl:$2a$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m\n" +
		"dora:$2b$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m\n"
	f, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff([]string{"alice", "bob", "carl", "dora"}, f.Users()); diff != "" {
		t.Errorf("Users (-want +got):\n%s", diff)
	}
	tests := []struct {
		name, user, password string
		want                 bool
	}{
		{"2y right password", "alice", "s3cret-test", true},
		{"2y wrong password", "alice", "s3cret-tesT", false},
		{"2y second user", "bob", "hunter2-test", true},
		{"password of another user", "bob", "s3cret-test", false},
		{"unknown user", "zed", "s3cret-test", false},
		{"empty password", "alice", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Verify(tt.user, tt.password); got != tt.want {
				t.Errorf("Verify(%q, <password>) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	// $2a$, $2b$ and $2y$ name the same algorithm (they differ only in historic bugs of other implementations):
	// alice's Apache $2y$ hash relabelled as $2a$ (carl) or $2b$ (dora) verifies the same password.
	for _, u := range []string{"carl", "dora"} {
		if !f.Verify(u, "s3cret-test") {
			t.Errorf("Verify(%q) of a relabelled hash failed", u)
		}
	}
}

func TestSetValidation(t *testing.T) {
	tests := []struct {
		name, user, password string
		cost                 int
		want                 string
	}{
		{"empty user", "", "pw", 4, "user name is empty"},
		{"colon", "a:b", "pw", 4, "user name contains ':'"},
		{"space", "a b", "pw", 4, "user name contains whitespace"},
		{"tab", "a\tb", "pw", 4, "user name contains whitespace"},
		{"newline", "a\nb", "pw", 4, "user name contains whitespace"},
		{"nul", "a\x00b", "pw", 4, "user name contains a control character or invalid UTF-8"},
		{"cost low", "a", "pw", 3, "bcrypt cost 3 is out of range 4-31"},
		{"cost high", "a", "pw", 32, "bcrypt cost 32 is out of range 4-31"},
		{"empty password", "a", "", 4, "password is empty"},
		{"long password", "a", strings.Repeat("p", 73), 4, "password is longer than 72 bytes, the most bcrypt accepts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Set(tt.user, tt.password, tt.cost)
			if err == nil {
				t.Fatal("Set succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetDeleteWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	orig := "# managed by hand\n" + aliceApache + "\n\n" + bobApache + "\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := f.Set("zoe", "zoe-pw", 4); err != nil {
		t.Fatalf("Set new user: %v", err)
	}
	if err := f.Set("alice", "new-alice-pw", 4); err != nil {
		t.Fatalf("Set existing user: %v", err)
	}
	if err := f.WriteFile(path); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatalf("Load after write: %v", err)
	}
	if diff := cmp.Diff([]string{"alice", "bob", "zoe"}, g.Users()); diff != "" {
		t.Errorf("Users (-want +got):\n%s", diff)
	}
	if !g.Verify("alice", "new-alice-pw") || g.Verify("alice", "s3cret-test") {
		t.Error("alice's password was not replaced")
	}
	if !g.Verify("zoe", "zoe-pw") || !g.Verify("bob", "hunter2-test") {
		t.Error("zoe or bob does not verify after the round trip")
	}
	lines := strings.Split(string(g.Bytes()), "\n")
	if lines[0] != "# managed by hand" || lines[3] != bobApache || lines[2] != "" {
		t.Error("comments, blank lines or untouched users were not preserved in place")
	}

	if !g.Delete("alice") || g.Delete("alice") {
		t.Error("Delete should report true once, then false")
	}
	if err := g.Set("yann", "yann-pw", 4); err != nil {
		t.Fatal(err)
	}
	if err := g.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	h, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bob", "zoe", "yann"}, h.Users()); diff != "" {
		t.Errorf("Users after delete (-want +got):\n%s", diff)
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after writes, want only the htpasswd file (temporary files left?)", len(entries))
	}
}

func TestWriteFileReplacesAtomicallyAndFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	link := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(target, []byte(aliceApache+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	// Hold the old file open: an atomic replace leaves its contents intact for existing readers.
	old, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	if added, err := AddUser(link, "bob", "pw-bob", 4); err != nil || !added {
		t.Fatalf("AddUser = %v, %v; want a new user", added, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a regular file")
	}
	after, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Error("file was rewritten in place, want a new inode renamed over it")
	}
	oldData := make([]byte, 200)
	n, _ := old.Read(oldData)
	if string(oldData[:n]) != aliceApache+"\n" {
		t.Error("the previously open file changed underneath its reader")
	}
	ok, err := VerifyUser(link, "bob", "pw-bob")
	if err != nil || !ok {
		t.Errorf("VerifyUser after AddUser = %v, %v", ok, err)
	}
}

func TestAddDeleteUserFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "htpasswd")
	if _, err := AddUser(path, "a", "pw", 4); err == nil {
		t.Error("AddUser into a missing directory succeeded")
	}
	path = filepath.Join(t.TempDir(), "htpasswd")
	if _, err := AddUser(path, "a", "pw", 4); err != nil {
		t.Fatalf("AddUser creating the file: %v", err)
	}
	if added, err := AddUser(path, "a", "pw2", 4); err != nil || added {
		t.Fatalf("AddUser of an existing user = %v, %v; want an update", added, err)
	}
	if err := DeleteUser(path, "nobody"); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("DeleteUser of an unknown user: %v, want no such user", err)
	}
	if err := DeleteUser(path, "a"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Users()) != 0 {
		t.Errorf("users after delete: %v", f.Users())
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestRewriteIsStable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"crlf file", "# c\r\n\r\n" + aliceApache + "\r\n", "# c\n\n" + aliceApache + "\n"},
		{"stray carriage returns", "\r\r\n", "\n"},
		{"indented entry", "  " + aliceApache + "  \n  # kept\n", aliceApache + "\n  # kept\n"},
		{"no final newline", aliceApache, aliceApache + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(f.Bytes())); diff != "" {
				t.Errorf("Bytes (-want +got):\n%s", diff)
			}
			g, err := Parse(strings.NewReader(string(f.Bytes())))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(f.Bytes()), string(g.Bytes())); diff != "" {
				t.Errorf("second rewrite differs (-first +second):\n%s", diff)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	long := strings.Repeat("x", maxLineLen+10)
	tests := []struct {
		name        string
		input       string
		wantUsers   []string
		wantSkipped []string
	}{
		{"all good", "# c\n" + aliceApache + "\n\n" + bobApache + "\n", []string{"alice", "bob"}, nil},
		{
			"md5 and plain text lines skipped, the rest applied",
			aliceApache + "\ncarol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\nsecretwithoutcolon\n" + bobApache + "\n",
			[]string{"alice", "bob"},
			[]string{
				`line 2: user "carol": password hash uses Apache MD5 ($apr1$); only bcrypt is supported (create entries with htpasswd -B)`,
				`line 3: missing ':' between user name and password hash`,
			},
		},
		{"duplicate keeps the first", aliceApache + "\n" + bobApache + "\nalice:$2y$04$XqBvcMPuB3wAjfgsIrxVMOsKPIcpEHHCXAuL4gasLRQD7L9/MSQlu\n",
			[]string{"alice", "bob"}, []string{`line 3: duplicate user "alice", first defined on line 1`}},
		{"a too-long line does not end the file", aliceApache + "\n" + long + "\n" + bobApache, []string{"alice", "bob"},
			[]string{"line 2: longer than 65536 bytes"}},
		{"too long at the end", aliceApache + "\n" + long, []string{"alice"}, []string{"line 2: longer than 65536 bytes"}},
		{"nothing usable", "carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/", []string{}, []string{
			`line 1: user "carol": password hash uses Apache MD5 ($apr1$); only bcrypt is supported (create entries with htpasswd -B)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, skipped, err := ParseLenient(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("ParseLenient: %v", err)
			}
			var got []string
			for _, s := range skipped {
				got = append(got, s.Error())
				if strings.Contains(s.Error(), "BJqWWEGh6") || strings.Contains(s.Error(), "XqBvcMPu") || strings.Contains(s.Error(), "secretwithoutcolon") {
					t.Errorf("skipped-line error echoes a hash or secret: %q", s)
				}
			}
			if diff := cmp.Diff(tt.wantSkipped, got); diff != "" {
				t.Errorf("skipped lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUsers, f.Users()); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			// The kept entries verify, and the duplicate's second password is not honoured.
			if f.Has("alice") && (!f.Verify("alice", "s3cret-test") || f.Verify("alice", "hunter2-test")) {
				t.Error("alice's first entry is not the one in effect")
			}
			if f.Has("bob") && !f.Verify("bob", "hunter2-test") {
				t.Error("bob's entry does not verify")
			}
		})
	}
}

func TestLoadLenientMissingFile(t *testing.T) {
	_, _, err := LoadLenient(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.Contains(err.Error(), "opening htpasswd file") || !os.IsNotExist(errors.Unwrap(err)) {
		t.Errorf("LoadLenient of a missing file = %v, want a not-exist error", err)
	}
}
