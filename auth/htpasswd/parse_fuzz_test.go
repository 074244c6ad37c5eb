package htpasswd

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse. Beyond not panicking: a parsed file written with Bytes parses again to
// the same users and the same bytes, and an error never quotes a password hash (or a password typed in its place).
// Seeds live in testdata/fuzz/FuzzParse and run with the unit tests.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"# comment\n\nalice:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
		"bob:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\r\n",
		"carol:$apr1$xyz$abcdefghijklmnopqrstuv\n",
		"dave:plaintext-secret-password\n",
		"eve:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"frank:$2y$99$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
		"a:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\na:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
		"no colon here\n",
		":$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
		"  indented:$2b$04$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC  \n",
		"us\x00er:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n",
		"\xff\xfe:hash\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lenient, skipped, lerr := ParseLenient(bytes.NewReader(data))
		if lerr != nil {
			t.Fatalf("ParseLenient of in-memory data: %v", lerr)
		}
		for _, s := range skipped {
			checkNoHashInError(t, data, s.Error())
		}
		for _, u := range lenient.Users() {
			if ValidateUser(u) != nil {
				t.Fatalf("ParseLenient kept unusable user %q", u)
			}
		}
		file, err := Parse(bytes.NewReader(data))
		if err != nil {
			checkNoHashInError(t, data, err.Error())
			if len(skipped) == 0 || skipped[0].Error() != err.Error() {
				t.Fatalf("Parse failed with %q, ParseLenient's first skipped line is %v", err, skipped)
			}
			return
		}
		if len(skipped) != 0 || !slices.Equal(file.Users(), lenient.Users()) {
			t.Fatalf("ParseLenient of a file Parse accepts: users %q, skipped %v; Parse: %q", lenient.Users(), skipped, file.Users())
		}
		out := file.Bytes()
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Parse(Bytes()) of a file that parsed: %v", err)
		}
		if !slices.Equal(file.Users(), again.Users()) {
			t.Fatalf("users changed on rewrite: %q -> %q", file.Users(), again.Users())
		}
		if got := again.Bytes(); !bytes.Equal(got, out) {
			t.Fatalf("Bytes not stable: %q -> %q", out, got)
		}
		for _, u := range file.Users() {
			if !file.Has(u) || ValidateUser(u) != nil {
				t.Fatalf("parsed user %q is not usable", u)
			}
		}
	})
}

// checkNoHashInError fails when msg contains the part after ':' of some entry line. Short or spaced values are
// skipped: they can occur in the fixed wording of a message by chance, and so can a value that is part of a user name
// (user names are quoted in errors on purpose).
func checkNoHashInError(t *testing.T, data []byte, msg string) {
	t.Helper()
	var users []string
	for _, l := range strings.Split(string(data), "\n") {
		u, _, _ := strings.Cut(strings.TrimSpace(l), ":")
		users = append(users, u, strconv.Quote(u))
	}
	for _, l := range strings.Split(string(data), "\n") {
		_, hash, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || len(hash) < 12 || strings.ContainsFunc(hash, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' }) {
			continue
		}
		if slices.ContainsFunc(users, func(u string) bool { return strings.Contains(u, hash) }) {
			continue
		}
		if strings.Contains(msg, hash) {
			t.Fatalf("parse error quotes a password hash: %q", msg)
		}
	}
}
