package htpasswd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/crypto/bcrypt"
)

// DefaultCost is the bcrypt cost Set uses when the caller has no preference.
const DefaultCost = 10

// maxPasswordLen is the longest password bcrypt accepts, in bytes.
const maxPasswordLen = 72

// File is an htpasswd file in memory. It keeps comments, blank lines and the order of users so that a file
// read, changed and written back differs only in the changed users. A File is not safe for concurrent mutation;
// concurrent Verify calls on an unchanging File are safe.
type File struct {
	lines []line
	index map[string]int // user -> position in lines
}

// line is one line of the file: either a user entry (user != "") or text kept verbatim (comment or blank).
type line struct {
	user    string
	hash    string
	raw     string
	skipped bool // a bad line ParseLenient is about to drop
}

// New returns an empty File.
func New() *File {
	return &File{index: map[string]int{}}
}

// Users returns the user names in file order.
func (f *File) Users() []string {
	users := make([]string, 0, len(f.index))
	for _, l := range f.lines {
		if l.user != "" {
			users = append(users, l.user)
		}
	}
	return users
}

// Has reports whether the file has an entry for user.
func (f *File) Has(user string) bool {
	_, ok := f.index[user]
	return ok
}

// Set adds user with a bcrypt hash of password at the given cost, or replaces the hash of an existing user in place.
func (f *File) Set(user, password string, cost int) error {
	if err := ValidateUser(user); err != nil {
		return err
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("bcrypt cost %d is out of range %d-%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if password == "" {
		return errors.New("password is empty")
	}
	if len(password) > maxPasswordLen {
		return fmt.Errorf("password is longer than %d bytes, the most bcrypt accepts", maxPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return fmt.Errorf("hashing password for user %q: %w", user, err)
	}
	if i, ok := f.index[user]; ok {
		f.lines[i].hash = string(hash)
		return nil
	}
	f.index[user] = len(f.lines)
	f.lines = append(f.lines, line{user: user, hash: string(hash)})
	return nil
}

// Delete removes user and reports whether it was present.
func (f *File) Delete(user string) bool {
	i, ok := f.index[user]
	if !ok {
		return false
	}
	f.lines = slices.Delete(f.lines, i, i+1)
	delete(f.index, user)
	for u, j := range f.index {
		if j > i {
			f.index[u] = j - 1
		}
	}
	return true
}

// Hash returns user's password hash as the file holds it.
func (f *File) Hash(user string) (hash string, ok bool) {
	i, ok := f.index[user]
	if !ok {
		return "", false
	}
	return f.lines[i].hash, true
}

// Verify reports whether password matches user's hash. For an unknown user it still runs bcrypt, against a
// dummy hash of the file's highest cost, so that the time taken does not tell whether the user exists.
func (f *File) Verify(user, password string) bool {
	i, ok := f.index[user]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(f.dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(f.lines[i].hash), []byte(password)) == nil
}

// dummyHash is a well-formed bcrypt hash nobody's password matches, at the highest cost in the file.
func (f *File) dummyHash() []byte {
	cost := 0
	for _, l := range f.lines {
		if l.user == "" {
			continue
		}
		if c, err := bcrypt.Cost([]byte(l.hash)); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = DefaultCost
	}
	return fmt.Appendf(nil, "$2a$%02d$%s", cost, strings.Repeat("A", 53))
}

// ValidateUser checks that user can be stored in an htpasswd file: not empty, no ':' and no whitespace or
// control characters.
func ValidateUser(user string) error {
	if user == "" {
		return errors.New("user name is empty")
	}
	for _, r := range user {
		switch {
		case r == ':':
			return errors.New("user name contains ':'")
		case unicode.IsSpace(r):
			return errors.New("user name contains whitespace")
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			return errors.New("user name contains a control character or invalid UTF-8")
		}
	}
	return nil
}
