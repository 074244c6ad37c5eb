package htpasswd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Bytes returns the file's contents: kept lines verbatim, user entries as "user:hash", one per line.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.lines {
		if l.user == "" {
			b.WriteString(l.raw)
		} else {
			b.WriteString(l.user + ":" + l.hash)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// WriteFile writes the file to path atomically: a temporary file in the same directory is written, synced and
// renamed over path, with mode 0600. If path is a symbolic link, the file it points to is replaced.
func (f *File) WriteFile(path string) error {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resolving htpasswd path: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary htpasswd file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("setting htpasswd file mode: %w", err)
	}
	if _, err := tmp.Write(f.Bytes()); err != nil {
		return fmt.Errorf("writing htpasswd file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing htpasswd file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing htpasswd file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		ok = true
		return fmt.Errorf("replacing htpasswd file: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; not every filesystem supports syncing a directory
		_ = d.Close()
	}
	return nil
}

// LoadOrNew loads the htpasswd file at path, or returns an empty File if it does not exist.
func LoadOrNew(path string) (*File, error) {
	f, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return New(), nil
	}
	return f, err
}

// AddUser sets user's password in the htpasswd file at path, creating the file if it is missing. It reports
// whether the user is new.
func AddUser(path, user, password string, cost int) (added bool, err error) {
	f, err := LoadOrNew(path)
	if err != nil {
		return false, err
	}
	added = !f.Has(user)
	if err := f.Set(user, password, cost); err != nil {
		return false, fmt.Errorf("setting password for user %q: %w", user, err)
	}
	return added, f.WriteFile(path)
}

// ErrNoSuchUser is returned by DeleteUser when the user is not in the file.
var ErrNoSuchUser = errors.New("no such user")

// DeleteUser removes user from the htpasswd file at path.
func DeleteUser(path, user string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	if !f.Delete(user) {
		return fmt.Errorf("deleting user %q from %s: %w", user, path, ErrNoSuchUser)
	}
	return f.WriteFile(path)
}

// VerifyUser loads the htpasswd file at path and reports whether password matches user.
func VerifyUser(path, user, password string) (bool, error) {
	f, err := Load(path)
	if err != nil {
		return false, err
	}
	return f.Verify(user, password), nil
}
