package registry

import (
	"fmt"
	"io"
	"net"
)

// announce tells the person starting the server, once, what they need to log in. The password itself is never
// printed: only the file holding it.
func (s *Server) announce(w io.Writer, passwordFile string) {
	if s.cfg.NoAuth {
		s.logger.Warn("AUTHENTICATION IS OFF (--no-auth): anyone who can reach this address can push, pull and overwrite images",
			"addr", s.ln.Addr().String())
		fmt.Fprintf(w, "WARNING: authentication is off (--no-auth). Anyone who can reach %s can push and pull.\n", s.ln.Addr())
		return
	}
	if passwordFile == "" {
		return
	}
	host := loginHost(s.ln.Addr())
	fmt.Fprintf(w, "registry-kit: no htpasswd file existed, so created %s with user %q and a random password.\n",
		s.cfg.HtpasswdPath(), AdminUser)
	fmt.Fprintf(w, "The password is in %s (readable only by its owner). Log in with:\n\n", passwordFile)
	fmt.Fprintf(w, "  docker login %s -u %s --password-stdin < %s\n\n", host, AdminUser, passwordFile)
}

// loginHost is the host:port a local client uses for addr: wildcard hosts become localhost.
func loginHost(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
