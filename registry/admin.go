package registry

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// bootstrapAdmin creates the htpasswd file with user admin and a random password when the file does not exist, and
// writes the password alone to DataDir/admin-password (0600). It returns the password file's path, or "" when the
// htpasswd file already existed (it is then never touched).
func bootstrapAdmin(cfg Config) (string, error) {
	htpasswdPath := cfg.HtpasswdPath()
	if _, err := os.Stat(htpasswdPath); err == nil {
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checking htpasswd file %s: %w", htpasswdPath, err)
	}
	password := rand.Text() // 26 characters, 130 bits from crypto/rand
	passwordFile := filepath.Join(cfg.DataDir, AdminPasswordFile)
	if err := writeFileAtomic(passwordFile, []byte(password+"\n")); err != nil {
		return "", fmt.Errorf("writing admin password file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(htpasswdPath), 0o700); err != nil {
		return "", fmt.Errorf("creating htpasswd directory: %w", err)
	}
	if err := writeHtpasswd(htpasswdPath, AdminUser, password); err != nil {
		os.Remove(passwordFile)
		return "", fmt.Errorf("creating htpasswd file %s: %w", htpasswdPath, err)
	}
	return passwordFile, nil
}

// writeHtpasswd writes a one-user htpasswd file (bcrypt, atomic, 0600).
func writeHtpasswd(path, user, password string) error {
	f := htpasswd.New()
	if err := f.Set(user, password, htpasswd.DefaultCost); err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	return f.WriteFile(path)
}

// writeFileAtomic writes data to a 0600 temporary file next to path and renames it into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
