package nodetrust

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Host is one registry as containerd's hosts.toml describes it.
type Host struct {
	// Address is the host:port in image names (the certs.d directory name).
	Address string
	// TLS selects https:// (else plain http://).
	TLS bool
	// CAFile is the path of the CA certificate on the node, for TLS; empty uses the node's system pool.
	CAFile string
}

func (h Host) validate() error {
	host, port, err := net.SplitHostPort(h.Address)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("registry address %q: want HOST:PORT", h.Address)
	}
	if strings.ContainsAny(h.Address, "/\\ \"'\n") || h.Address == "." || h.Address == ".." {
		return fmt.Errorf("registry address %q: not a valid host:port", h.Address)
	}
	if !h.TLS && h.CAFile != "" {
		return errors.New("a CA file only applies to a TLS registry")
	}
	return nil
}

// URL is the registry's base URL.
func (h Host) URL() string {
	if h.TLS {
		return "https://" + h.Address
	}
	return "http://" + h.Address
}

// HostsTOML is the hosts.toml containerd reads from certs.d/<Address>/ (containerd's "registry host namespace"
// format): the server, and one host entry allowed to pull and resolve, with the CA for TLS.
func HostsTOML(h Host) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Written by registry-kit (nodes trust); removed by registry-kit undeploy.\n")
	fmt.Fprintf(&b, "server = %s\n", tomlString(h.URL()))
	// containerd falls back to server when the host answers 404 (a tag that does not exist): the server needs the
	// CA too, or that answer turns into "x509: certificate signed by unknown authority".
	if h.CAFile != "" {
		fmt.Fprintf(&b, "ca = %s\n", tomlString(h.CAFile))
	}
	fmt.Fprintf(&b, "\n[host.%s]\n", tomlString(h.URL()))
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	if h.CAFile != "" {
		fmt.Fprintf(&b, "  ca = %s\n", tomlString(h.CAFile))
	}
	return []byte(b.String()), nil
}

// tomlString quotes s as a TOML basic string (the subset of Go escapes TOML shares).
func tomlString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	return `"` + b.String() + `"`
}
