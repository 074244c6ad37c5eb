package nodetrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// AgentOptions are the trust agent's flags (`registry-kit nodes trust-agent`).
type AgentOptions struct {
	Registry string // host:port
	TLS      bool
	CAFile   string // inside the pod
	Owner    string
	// CertsDir is the node's certs.d as the agent sees it; HostCertsDir the same as containerd sees it.
	CertsDir, HostCertsDir string
	// ContainerdConfig is containerd's config.toml as the agent sees it; HostContainerdConfig as the node has it.
	ContainerdConfig, HostContainerdConfig string
	// CertsMount and ConfigMount are POD=HOST: the host directories mounted into the pod, to map paths reached
	// through symlinks back to the node's (empty: the paths are taken as they are).
	CertsMount, ConfigMount string
	Remove                  bool
}

// resolve returns the host path of the certs directory as containerd sees it after symlinks (creating it).
func (o AgentOptions) resolveCertsDir() (string, error) {
	if o.CertsMount == "" {
		return o.HostCertsDir, nil
	}
	m, err := parseMount(o.CertsMount)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.CertsDir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", o.HostCertsDir, err)
	}
	return m.toHost(o.CertsDir)
}

// RunAgent writes (or, with Remove, removes) this node's certs.d entry for the registry, after checking that
// containerd reads the certs.d directory. It returns one line saying what it did.
func RunAgent(o AgentOptions) (string, error) {
	if o.Remove {
		removed, err := Remove(o.CertsDir, o.Registry, o.Owner)
		switch {
		case err != nil:
			return "", err
		case removed:
			return fmt.Sprintf("removed %s/%s", o.HostCertsDir, o.Registry), nil
		}
		return fmt.Sprintf("nothing to remove: %s/%s was not written by registry-kit for %s", o.HostCertsDir, o.Registry, o.Owner), nil
	}
	conf, err := os.ReadFile(o.ContainerdConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no containerd configuration at %s on this node: is its container runtime containerd? "+
			"(registry-kit configures containerd only; CRI-O needs /etc/containers/registries.conf.d by hand); "+
			"if containerd's configuration is elsewhere, redeploy with --containerd-config PATH", o.HostContainerdConfig)
	}
	if err != nil {
		return "", fmt.Errorf("reading containerd's configuration %s: %w", o.HostContainerdConfig, err)
	}
	certsDir, err := o.resolveCertsDir()
	if err != nil {
		return "", err
	}
	if err := CheckConfigPath(conf, o.HostContainerdConfig, certsDir); err != nil {
		if certsDir == filepath.Clean(o.HostCertsDir) || CheckConfigPath(conf, o.HostContainerdConfig, o.HostCertsDir) != nil {
			return "", err
		}
	}
	t := Trust{Host: Host{Address: o.Registry, TLS: o.TLS}, Owner: o.Owner}
	if o.CAFile != "" {
		if t.CA, err = os.ReadFile(o.CAFile); err != nil {
			return "", fmt.Errorf("reading the registry's CA: %w", err)
		}
	}
	if err := Write(o.CertsDir, certsDir, t); err != nil {
		return "", err
	}
	what := "plain HTTP"
	if o.TLS {
		what = "TLS"
		if len(t.CA) > 0 {
			what += " with the registry's CA"
		}
	}
	return fmt.Sprintf("wrote %s/%s/%s (%s); containerd reads it on the next pull", certsDir, o.Registry, HostsFile, what), nil
}
