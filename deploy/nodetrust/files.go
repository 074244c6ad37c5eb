package nodetrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File names inside certs.d/<host:port>/. OwnerFile marks a directory registry-kit wrote, with the registry
// (namespace/name) it belongs to: only those are ever changed or removed.
const (
	HostsFile = "hosts.toml"
	CAFile    = "ca.crt"
	OwnerFile = ".registry-kit-owner"
)

// ErrNotOurs is returned (wrapped) when certs.d/<host:port>/hosts.toml exists and registry-kit did not write it.
var ErrNotOurs = errors.New("hosts.toml exists and was not written by registry-kit")

// Trust is what one node gets for one registry.
type Trust struct {
	Host Host
	// CA is the PEM CA certificate for a TLS host (written as ca.crt); empty for plain HTTP or a publicly
	// trusted certificate.
	CA []byte
	// Owner is namespace/name of the registry, recorded in OwnerFile.
	Owner string
}

// Write writes certsDir/<address>/hosts.toml (and ca.crt) as seen by this process; hostCertsDir is the same
// directory as the node's containerd sees it (they differ inside a pod with a hostPath mount), used for the
// ca path in hosts.toml. It refuses to overwrite a hosts.toml registry-kit did not write.
func Write(certsDir, hostCertsDir string, t Trust) error {
	if t.Owner == "" || strings.ContainsAny(t.Owner, "\n") {
		return fmt.Errorf("owner %q: want namespace/name", t.Owner)
	}
	if err := t.Host.validate(); err != nil {
		return err
	}
	dir := filepath.Join(certsDir, t.Host.Address)
	if err := checkOurs(dir, t.Owner); err != nil {
		return err
	}
	h := t.Host
	if len(t.CA) > 0 {
		if !h.TLS {
			return errors.New("a CA only applies to a TLS registry")
		}
		h.CAFile = filepath.Join(hostCertsDir, h.Address, CAFile)
	}
	hosts, err := HostsTOML(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	// The owner mark first, so a directory registry-kit started to write is always one it may remove.
	if err := writeAtomic(filepath.Join(dir, OwnerFile), []byte(t.Owner+"\n")); err != nil {
		return err
	}
	if len(t.CA) > 0 {
		if err := writeAtomic(filepath.Join(dir, CAFile), t.CA); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, CAFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the old %s: %w", CAFile, err)
	}
	return writeAtomic(filepath.Join(dir, HostsFile), hosts)
}

// Remove deletes certsDir/<address> when registry-kit wrote it for owner; anything else is left alone. It
// reports whether it removed something.
func Remove(certsDir, address, owner string) (bool, error) {
	if err := (Host{Address: address}).validate(); err != nil {
		return false, err
	}
	dir := filepath.Join(certsDir, address)
	got, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", filepath.Join(dir, OwnerFile), err)
	}
	if strings.TrimSpace(string(got)) != owner {
		return false, nil
	}
	for _, f := range []string{HostsFile, CAFile, OwnerFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("removing %s: %w", filepath.Join(dir, f), err)
		}
	}
	// Only if empty: files someone else put there stay.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
		return true, fmt.Errorf("removing %s: %w", dir, err)
	}
	return true, nil
}

func isNotEmpty(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (strings.Contains(pe.Err.Error(), "not empty") || strings.Contains(pe.Err.Error(), "exists"))
}

// checkOurs fails when dir holds a hosts.toml without registry-kit's owner mark, or one of another registry.
func checkOurs(dir, owner string) error {
	got, err := os.ReadFile(filepath.Join(dir, OwnerFile))
	switch {
	case err == nil:
		if o := strings.TrimSpace(string(got)); o != owner {
			return fmt.Errorf("%s: written by registry-kit for registry %s, not %s: undeploy that one first", dir, o, owner)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", filepath.Join(dir, OwnerFile), err)
	}
	if _, err := os.Stat(filepath.Join(dir, HostsFile)); err == nil {
		return fmt.Errorf("%s: %w; move it away to let registry-kit manage this registry's trust", filepath.Join(dir, HostsFile), ErrNotOurs)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
