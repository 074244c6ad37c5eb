package dockerconfig

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// hostRE accepts a registry host as a config key may hold it: DNS labels (with kubelet globs), IPv4, or a
// bracketed IPv6 address, and an optional port.
var hostRE = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9*?](?:[a-zA-Z0-9*?_-]*[a-zA-Z0-9*?])?(?:\.[a-zA-Z0-9*?](?:[a-zA-Z0-9*?_-]*[a-zA-Z0-9*?])?)*)(?::[0-9]{1,5})?$`)

// pathRE accepts the repository-path prefix a key may carry.
var pathRE = regexp.MustCompile(`^(/[a-z0-9._-]+)*$`)

// NormalizeServer turns what a user typed as a registry server into the key to store in a pull secret,
// and explains what it changed and which images the kubelet will use the entry for:
//   - Docker Hub in any spelling ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")
//     becomes DockerHubKey, the key docker login and kubectl use, which the kubelet applies to docker.io/...
//     and to short names such as "nginx";
//   - a scheme and a /v1/ or /v2/ path are dropped (the kubelet ignores them);
//   - host[:port] is kept exactly: the kubelet only uses the entry for images whose reference starts with
//     the same host and the same port (or no port when none is given);
//   - any other path is kept, and limits the entry to repositories under it.
func NormalizeServer(server string) (key string, notes []string, err error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return "", nil, errors.New("registry server is empty")
	}
	if IsDockerHub(s) {
		if s != DockerHubKey {
			notes = append(notes, fmt.Sprintf("%q is Docker Hub: stored under %q as docker login and kubectl do; the kubelet uses it for docker.io/... images and short names like nginx", s, DockerHubKey))
		}
		return DockerHubKey, notes, nil
	}
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return "", nil, fmt.Errorf("registry server %q: scheme %q is not http or https", s, scheme)
		}
		rest = after
		notes = append(notes, fmt.Sprintf("dropped the scheme %s:// (the kubelet matches host[:port] only)", scheme))
	}
	u, err := url.Parse("https://" + rest)
	if err != nil {
		return "", nil, fmt.Errorf("registry server %q is not a host[:port][/path]: %w", s, err)
	}
	if u.User != nil || strings.ContainsAny(rest, "?#@") {
		return "", nil, fmt.Errorf("registry server %q must be host[:port][/path] without user, query or fragment", s)
	}
	if !hostRE.MatchString(u.Host) {
		return "", nil, fmt.Errorf("registry server %q: %q is not a valid host[:port]", s, u.Host)
	}
	path, dropped := u.Path, false
	for {
		if t := strings.TrimRight(path, "/"); t == "/v1" || t == "/v2" {
			path, dropped = "", true
		} else if strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/v2/") {
			path, dropped = path[3:], true
			continue
		}
		break
	}
	if dropped {
		notes = append(notes, fmt.Sprintf("dropped the API path %s (the kubelet ignores /v1/ and /v2/)", u.Path[:3]))
	}
	path = strings.TrimRight(path, "/")
	if !pathRE.MatchString(path) {
		return "", nil, fmt.Errorf("registry server %q: path %q is not a repository path (lowercase letters, digits, . _ - /)", s, path)
	}
	key = u.Host + path
	if strings.Contains(u.Host, ":") && !strings.HasPrefix(u.Host, "[") || strings.Contains(u.Host, "]:") {
		notes = append(notes, fmt.Sprintf("the kubelet uses this entry for images named %s/...; the port must match exactly", key))
	} else {
		notes = append(notes, fmt.Sprintf("the kubelet uses this entry for images named %s/... (no port: an image %s:PORT/... will not match)", key, u.Host))
	}
	return key, notes, nil
}
