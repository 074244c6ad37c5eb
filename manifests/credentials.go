package manifests

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// Random bytes drawn for a generated admin password (hex encoded: 36 characters, 144 bits) and the HTTP secret.
const (
	generatedPasswordBytes = 18
	httpSecretBytes        = 32
)

// parseHtpasswd parses existing htpasswd content. Errors name the line, never its hash.
func parseHtpasswd(content []byte) (*htpasswd.File, error) {
	f, err := htpasswd.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("parsing htpasswd content: %w", err)
	}
	return f, nil
}

func validUserName(name string) error { return htpasswd.ValidateUser(name) }

// credentials are the Secret contents Generate computed.
type credentials struct {
	htpasswd   []byte
	httpSecret []byte
	redis      []byte // the Redis password, or nil
	generated  *User
}

// buildCredentials hashes o.Users over o.Htpasswd, generates the admin user when there is no user at all, and
// takes or generates the HTTP secret. o has defaults applied and has been validated.
func buildCredentials(o Options) (credentials, error) {
	var c credentials
	f := htpasswd.New()
	if len(o.Htpasswd) > 0 {
		var err error
		if f, err = parseHtpasswd(o.Htpasswd); err != nil {
			return c, err
		}
	}
	users := o.Users
	if len(users) == 0 && len(f.Users()) == 0 {
		pw, err := randomHex(o.Rand, generatedPasswordBytes)
		if err != nil {
			return c, fmt.Errorf("generating the %s password: %w", DefaultAdminUser, err)
		}
		c.generated = &User{Name: DefaultAdminUser, Password: pw}
		users = []User{*c.generated}
	}
	for _, u := range users {
		if err := f.Set(u.Name, u.Password, o.BcryptCost); err != nil {
			return c, fmt.Errorf("adding user %q: %w", u.Name, err)
		}
	}
	c.htpasswd = f.Bytes()

	c.httpSecret = o.HTTPSecret
	if len(c.httpSecret) == 0 {
		s, err := randomHex(o.Rand, httpSecretBytes)
		if err != nil {
			return c, fmt.Errorf("generating the HTTP secret: %w", err)
		}
		c.httpSecret = []byte(s)
	}
	c.redis = o.Redis.Password
	if o.needsRedisPassword() {
		s, err := randomHex(o.Rand, httpSecretBytes)
		if err != nil {
			return c, fmt.Errorf("generating the Redis password: %w", err)
		}
		c.redis = []byte(s)
	}
	return c, nil
}

func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
