package access

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultFileName is the policy file's name next to the htpasswd file, where the CLI and serve look by default.
const DefaultFileName = "access-policy.yaml"

// DefaultPath is the policy file next to an htpasswd file.
func DefaultPath(htpasswdPath string) string {
	return filepath.Join(filepath.Dir(htpasswdPath), DefaultFileName)
}

// EditFile applies SetRole to the policy file at path (missing: starting from Template) and writes the result
// atomically with mode 0600, so a running registry never reads half a policy.
func EditFile(path, user, role string, repos []string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading access policy: %w", err)
	}
	data, err := SetRole(old, user, role, repos)
	if err != nil {
		return fmt.Errorf("editing access policy %s: %w", path, err)
	}
	return writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) error {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing access policy: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; removes the leftover otherwise
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing access policy: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing access policy: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing access policy: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing access policy: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing access policy: %w", err)
	}
	return nil
}
