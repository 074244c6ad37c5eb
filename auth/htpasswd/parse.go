package htpasswd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxLineLen bounds one line of an htpasswd file.
const maxLineLen = 64 * 1024

// LineError is one line of an htpasswd file that cannot be used: its number and what is wrong with it. The message
// may name the user, never the password hash (or a password typed in its place).
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// Load reads and parses the htpasswd file at path.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening htpasswd file: %w", err)
	}
	defer fh.Close()
	f, err := Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("parsing htpasswd file %s: %w", path, err)
	}
	return f, nil
}

// LoadLenient reads the htpasswd file at path with ParseLenient. err is set only when the file cannot be opened or
// read; bad lines are returned in skipped.
func LoadLenient(path string) (_ *File, skipped []*LineError, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening htpasswd file: %w", err)
	}
	defer fh.Close()
	f, skipped, err := ParseLenient(fh)
	if err != nil {
		return nil, nil, fmt.Errorf("reading htpasswd file %s: %w", path, err)
	}
	return f, skipped, nil
}

// Parse reads an htpasswd file. Blank lines and lines starting with '#' are kept as they are. Every other line must
// be "user:bcrypt-hash"; an error names the first bad line and what is wrong with it, never its hash.
func Parse(r io.Reader) (*File, error) {
	f, skipped, err := parse(r, true)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		return nil, skipped[0]
	}
	return f, nil
}

// ParseLenient reads an htpasswd file the way a server applying a changed file needs it: every line that parses is
// kept, and every other line is skipped and reported, in file order. A duplicate user keeps its first line (the one
// Apache uses). The File holds only the lines kept, so it is for checking passwords, not for writing back. err is
// set only when reading fails.
func ParseLenient(r io.Reader) (_ *File, skipped []*LineError, err error) {
	return parse(r, false)
}

// parse reads r line by line; strict stops at the first bad line.
func parse(r io.Reader, strict bool) (*File, []*LineError, error) {
	f := New()
	var skipped []*LineError
	sp := &lineSplitter{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	sc.Split(sp.split)
	n := 0
	for sc.Scan() {
		n++
		if err := f.addLine(sc.Text(), n, sp.takeTooLong()); err != nil {
			skipped = append(skipped, &LineError{Line: n, Err: err})
			if strict {
				return nil, skipped, nil
			}
			// Keep one element of f.lines per input line, so index+1 stays the line number.
			f.lines = append(f.lines, line{skipped: true})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading line %d: %w", n+1, err)
	}
	if !strict && len(skipped) > 0 {
		f.dropPlaceholders()
	}
	return f, skipped, nil
}

// addLine appends line number n (raw, without its line ending) to f, or returns what is wrong with it.
func (f *File) addLine(raw string, n int, tooLong bool) error {
	if tooLong {
		return fmt.Errorf("longer than %d bytes", maxLineLen)
	}
	t := strings.TrimSpace(raw)
	if t == "" || strings.HasPrefix(t, "#") {
		// Kept verbatim, except carriage returns a CRLF file leaves behind, so rewriting is stable.
		f.lines = append(f.lines, line{raw: strings.TrimRight(raw, "\r")})
		return nil
	}
	user, hash, err := parseEntry(t)
	if err != nil {
		return err
	}
	if first, dup := f.index[user]; dup {
		return fmt.Errorf("duplicate user %q, first defined on line %d", user, first+1)
	}
	f.index[user] = len(f.lines)
	f.lines = append(f.lines, line{user: user, hash: hash, raw: raw})
	return nil
}

// dropPlaceholders removes the lines standing in for skipped ones and renumbers the index.
func (f *File) dropPlaceholders() {
	kept := f.lines[:0]
	for _, l := range f.lines {
		if !l.skipped {
			kept = append(kept, l)
		}
	}
	f.lines = kept
	clear(f.index)
	for i, l := range f.lines {
		if l.user != "" {
			f.index[l.user] = i
		}
	}
}

// lineSplitter is bufio.ScanLines, except that a line longer than maxLineLen does not end the scan: it is returned
// as one empty token flagged as too long, and the rest of it is skipped.
type lineSplitter struct {
	skipping, tooLong bool
}

func (s *lineSplitter) split(data []byte, atEOF bool) (int, []byte, error) {
	if s.skipping {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return len(data), nil, nil
		}
		s.skipping = false
		return i + 1, nil, nil
	}
	advance, token, err := bufio.ScanLines(data, atEOF)
	if advance == 0 && token == nil && err == nil && len(data) >= maxLineLen {
		s.skipping, s.tooLong = true, true
		return len(data), []byte{}, nil
	}
	return advance, token, err
}

// takeTooLong reports whether the token just scanned was a too-long line.
func (s *lineSplitter) takeTooLong() bool {
	t := s.tooLong
	s.tooLong = false
	return t
}

// parseEntry splits "user:hash" and checks both halves. Errors never include the hash.
func parseEntry(t string) (user, hash string, err error) {
	user, hash, ok := strings.Cut(t, ":")
	if !ok {
		return "", "", errors.New(`missing ':' between user name and password hash`)
	}
	if err := ValidateUser(user); err != nil {
		return "", "", err
	}
	if hash == "" {
		return "", "", fmt.Errorf("user %q has an empty password hash", user)
	}
	if err := checkHash(hash); err != nil {
		return "", "", fmt.Errorf("user %q: %w", user, err)
	}
	return user, hash, nil
}

// checkHash accepts bcrypt hashes with the $2a$, $2b$ or $2y$ prefix and names any other scheme it recognises.
func checkHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return checkBcrypt(hash)
	case strings.HasPrefix(hash, "$apr1$"):
		return unsupported("Apache MD5 ($apr1$)")
	case strings.HasPrefix(hash, "{SHA}"):
		return unsupported("SHA-1 ({SHA})")
	case strings.HasPrefix(hash, "$1$"):
		return unsupported("MD5-crypt ($1$)")
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return unsupported("SHA-crypt ($5$/$6$)")
	case strings.HasPrefix(hash, "$2"):
		return unsupported("an unknown bcrypt variant")
	case len(hash) == 13 && !strings.ContainsAny(hash, "$:{}"):
		return unsupported("DES crypt")
	default:
		return unsupported("an unrecognised scheme or a plain-text password")
	}
}

func unsupported(scheme string) error {
	return fmt.Errorf("password hash uses %s; only bcrypt is supported (create entries with htpasswd -B)", scheme)
}

// bcryptAlphabet is the base64 alphabet bcrypt uses for salt and hash.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkBcrypt checks the shape of "$2?$NN$" + 53 characters so a damaged entry is found at load, not at login.
func checkBcrypt(hash string) error {
	if len(hash) != 60 {
		return fmt.Errorf("malformed bcrypt hash: %d characters, want 60", len(hash))
	}
	if hash[6] != '$' {
		return errors.New("malformed bcrypt hash: cost is not two digits followed by '$'")
	}
	if strings.Trim(hash[7:], bcryptAlphabet) != "" {
		return errors.New("malformed bcrypt hash: salt and hash contain characters outside bcrypt's base64 alphabet")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return errors.New("malformed bcrypt hash: cost is not a number between 04 and 31")
	}
	return nil
}
