package dockerconfig

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Docker Hub names. The docker CLI and kubectl store Docker Hub credentials under DockerHubKey; the kubelet
// uses an entry whose host is index.docker.io for every image on Docker Hub (docker.io/..., short names).
const (
	DockerHubKey    = "https://index.docker.io/v1/"
	DockerHubDomain = "docker.io"
	dockerHubIndex  = "index.docker.io"
)

// dockerHubAliases are the names people use for Docker Hub in a server flag or a config key.
var dockerHubAliases = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, "registry.hub.docker.com": true,
}

// IsDockerHub reports whether a server or config key names Docker Hub (docker.io, index.docker.io,
// registry-1.docker.io, https://index.docker.io/v1/, ...). Note that the kubelet itself only
// treats keys with host index.docker.io or docker.io as Docker Hub credentials.
func IsDockerHub(server string) bool {
	host, _ := keyHostPath(server)
	return dockerHubAliases[host]
}

// Match is one entry the kubelet would try for an image, in the order it would try them.
type Match struct {
	Source     string // what was passed to Keyring.Add (for example "secret ns/name"); empty from Config.MatchAll
	Key        string // the entry's key as written in the config
	Credential Credential
}

// Keyring mirrors the kubelet's BasicDockerKeyring: all pull secrets of a pod are added to one keyring and
// looked up together. The zero value is empty and ready to use.
type Keyring struct {
	index []string           // normalized keys, reverse-sorted so longer paths win
	creds map[string][]Match // normalized key -> entries in the order they were added
}

// Add adds every entry of cfg, tagged with source.
func (k *Keyring) Add(source string, cfg *Config) {
	if k.creds == nil {
		k.creds = map[string][]Match{}
	}
	for _, key := range cfg.Keys() {
		norm := normalizeKey(key)
		if norm == "" {
			continue // the kubelet ignores entries it cannot parse
		}
		if _, seen := k.creds[norm]; !seen {
			k.index = append(k.index, norm)
		}
		k.creds[norm] = append(k.creds[norm], Match{Source: source, Key: key, Credential: cfg.Auths[key]})
	}
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
}

// Lookup returns the entries the kubelet would try for image (as written in a pod spec: "nginx",
// "127.0.0.1:5000/app:v1", "reg.example.com/team/app@sha256:..."), most specific first. An image the
// kubelet cannot parse matches nothing; check it with RegistryHost.
func (k *Keyring) Lookup(image string) []Match {
	repo, err := Repository(image)
	if err != nil {
		return nil
	}
	return k.lookup(repo)
}

// lookup is the kubelet's BasicDockerKeyring.Lookup on an already normalized repository name.
func (k *Keyring) lookup(repo string) []Match {
	var out []Match
	for _, key := range k.index {
		if URLsMatch(key, repo) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) > 0 {
		return out
	}
	if isDefaultRegistryMatch(repo) {
		return append(out, k.creds[dockerHubIndex]...)
	}
	return nil
}

// MatchAll returns the entries of c the kubelet would try for image, most specific first.
func (c *Config) MatchAll(image string) []Match {
	var k Keyring
	k.Add("", c)
	return k.Lookup(image)
}

// Match returns the first entry of c the kubelet would use for image.
func (c *Config) Match(image string) (key string, cred Credential, ok bool) {
	m := c.MatchAll(image)
	if len(m) == 0 {
		return "", Credential{}, false
	}
	return m[0].Key, m[0].Credential, true
}

// Repository returns the name the kubelet looks credentials up with: the fully qualified repository
// without tag or digest ("nginx" -> "docker.io/library/nginx").
func Repository(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %q: %w", image, err)
	}
	return named.Name(), nil
}

// RegistryHost returns the registry host[:port] of an image reference ("nginx" -> "docker.io",
// "127.0.0.1:5000/app:v1" -> "127.0.0.1:5000").
func RegistryHost(image string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("parsing image reference %q: %w", image, err)
	}
	return reference.Domain(named), nil
}

// NormalizeKey returns a config key in the form the kubelet indexes it by: no scheme, no /v1/ or /v2/
// path ("https://index.docker.io/v1/" -> "index.docker.io", "http://reg:5000/v2/team" -> "reg:5000/team").
// It returns "" for a key the kubelet would ignore as unparseable.
func NormalizeKey(key string) string { return normalizeKey(key) }

func normalizeKey(key string) string {
	if !strings.HasPrefix(key, "https://") && !strings.HasPrefix(key, "http://") {
		key = "https://" + key
	}
	u, err := url.Parse(key)
	if err != nil {
		return ""
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	if p != "" && p != "/" {
		return u.Host + p
	}
	return u.Host
}

// KeyHost returns the host[:port] part of a config key (it may be a glob such as "*.example.com").
func KeyHost(key string) string {
	host, _ := keyHostPath(key)
	return host
}

// keyHostPath splits a key or server into host[:port] and path, ignoring any scheme.
func keyHostPath(key string) (host, path string) {
	n := normalizeKey(key)
	host, path, _ = strings.Cut(n, "/")
	return host, path
}

// URLsMatch reports whether the schemeless glob (a normalized config key or a matchImages pattern such as
// "*.example.com:5000/team") matches the schemeless target (a repository such as
// "reg.example.com:5000/team/app"), with the kubelet's rules: each dot-separated host label is a
// filepath.Match glob, the number of labels must be equal, the port must be equal (absent counts as a
// value), and the glob's path must be a string prefix of the target's path.
func URLsMatch(glob, target string) bool {
	g, err := url.Parse("https://" + glob)
	if err != nil {
		return false
	}
	t, err := url.Parse("https://" + target)
	if err != nil {
		return false
	}
	gParts, gPort := splitHost(g.Host)
	tParts, tPort := splitHost(t.Host)
	if gPort != tPort || len(gParts) != len(tParts) {
		return false
	}
	if !strings.HasPrefix(t.Path, g.Path) {
		return false
	}
	for i, part := range gParts {
		if ok, err := filepath.Match(part, tParts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) (labels []string, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}

// isDefaultRegistryMatch mirrors the kubelet: does the repository pull from Docker Hub?
func isDefaultRegistryMatch(repo string) bool {
	first, _, found := strings.Cut(repo, "/")
	if first == "" {
		return false
	}
	if !found {
		return true
	}
	if first == DockerHubDomain || first == dockerHubIndex {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}
