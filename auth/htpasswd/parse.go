package htpasswd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxLineLen bounds one line of an htpasswd file.
const maxLineLen = 64 * 1024

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

// Parse reads an htpasswd file. Blank lines and lines starting with '#' are kept as they are. Every other line must
// be "user:bcrypt-hash"; an error names the first bad line and what is wrong with it, never its hash.
func Parse(r io.Reader) (*File, error) {
	f := New()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			// Kept verbatim, except carriage returns a CRLF file leaves behind, so rewriting is stable.
			f.lines = append(f.lines, line{raw: strings.TrimRight(raw, "\r")})
			continue
		}
		user, hash, err := parseEntry(t)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		// Parse appends one element of f.lines per input line, so index+1 is the line number.
		if first, dup := f.index[user]; dup {
			return nil, fmt.Errorf("line %d: duplicate user %q, first defined on line %d", n, user, first+1)
		}
		f.index[user] = len(f.lines)
		f.lines = append(f.lines, line{user: user, hash: hash, raw: raw})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n+1, maxLineLen)
		}
		return nil, fmt.Errorf("reading line %d: %w", n+1, err)
	}
	return f, nil
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
