package credprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

// DefaultCredentialsFile is where the plugin reads credentials on a node unless told otherwise.
const DefaultCredentialsFile = "/etc/registry-kit/credential-provider.json"

// CredentialsEnv, when set, holds the credentials JSON itself instead of a file (for containers and tests).
const CredentialsEnv = "REGISTRY_KIT_CREDENTIALS"

// DefaultCacheDuration is how long the kubelet caches what the plugin returns.
const DefaultCacheDuration = 10 * time.Minute

const (
	requestKind  = "CredentialProviderRequest"
	responseKind = "CredentialProviderResponse"
)

// ErrBadRequest is returned by Serve for a request it cannot answer (malformed, wrong apiVersion or kind).
var ErrBadRequest = errors.New("bad credential provider request")

// LoadCredentialsFile reads a docker-config-style credentials file ({"auths":{...}}). It refuses a file
// that group or others can read or write, since it holds registry passwords.
func LoadCredentialsFile(path string) (*dockerconfig.Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading credentials file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("credentials file %s has mode %04o: it holds passwords and must not be accessible to group or others (chmod 600 %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading credentials file: %w", err)
	}
	return parseCredentials(data, "credentials file "+path)
}

// LoadCredentialsEnv parses credentials from the value of CredentialsEnv.
func LoadCredentialsEnv(value string) (*dockerconfig.Config, error) {
	return parseCredentials([]byte(value), "$"+CredentialsEnv)
}

func parseCredentials(data []byte, what string) (*dockerconfig.Config, error) {
	cfg, err := dockerconfig.ParseSecretData(dockerconfig.SecretTypeDockerConfigJSON,
		map[string][]byte{dockerconfig.DockerConfigJSONKey: data})
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", what, err)
	}
	if len(cfg.Auths) == 0 {
		return nil, fmt.Errorf("parsing %s: no registries under \"auths\"", what)
	}
	return cfg, nil
}

// Serve reads one CredentialProviderRequest (credentialprovider.kubelet.k8s.io/v1) from in and writes the
// CredentialProviderResponse to out. The response holds every entry of creds for the image's registry host
// (so per-path entries stay distinct under the Registry cache key); an image of another registry gets a
// valid response with no auth. Errors wrap ErrBadRequest for input the kubelet should never send, and
// never contain a credential.
func Serve(in io.Reader, out io.Writer, creds *dockerconfig.Config, cacheDuration time.Duration) error {
	req, err := decodeRequest(in)
	if err != nil {
		return err
	}
	resp, err := respond(req, creds, cacheDuration)
	if err != nil {
		return err
	}
	return writeResponse(out, resp)
}

func writeResponse(out io.Writer, resp *credentialproviderv1.CredentialProviderResponse) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encoding credential provider response: %w", err)
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing credential provider response: %w", err)
	}
	return nil
}

func decodeRequest(in io.Reader) (*credentialproviderv1.CredentialProviderRequest, error) {
	data, err := io.ReadAll(io.LimitReader(in, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading credential provider request: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty input (the kubelet sends a %s as JSON on stdin)", ErrBadRequest, requestKind)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %w", ErrBadRequest, err)
	}
	if want := credentialproviderv1.SchemeGroupVersion.String(); tm.APIVersion != want {
		return nil, fmt.Errorf("%w: unsupported apiVersion %q (registry-kit speaks %s; set apiVersion: %s for this provider in the CredentialProviderConfig)",
			ErrBadRequest, tm.APIVersion, want, want)
	}
	if tm.Kind != requestKind {
		return nil, fmt.Errorf("%w: kind %q, want %s", ErrBadRequest, tm.Kind, requestKind)
	}
	var req credentialproviderv1.CredentialProviderRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if req.Image == "" {
		return nil, fmt.Errorf("%w: image is empty", ErrBadRequest)
	}
	return &req, nil
}

func respond(req *credentialproviderv1.CredentialProviderRequest, creds *dockerconfig.Config, cacheDuration time.Duration) (*credentialproviderv1.CredentialProviderResponse, error) {
	resp := &credentialproviderv1.CredentialProviderResponse{
		TypeMeta:      metav1.TypeMeta{APIVersion: credentialproviderv1.SchemeGroupVersion.String(), Kind: responseKind},
		CacheKeyType:  credentialproviderv1.RegistryPluginCacheKeyType,
		CacheDuration: &metav1.Duration{Duration: cacheDuration},
	}
	host, err := dockerconfig.RegistryHost(req.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	for _, key := range creds.Keys() {
		if !sameRegistry(key, host) {
			continue
		}
		c := creds.Auths[key]
		if c.Username == "" || c.Password == "" {
			continue
		}
		if resp.Auth == nil {
			resp.Auth = map[string]credentialproviderv1.AuthConfig{}
		}
		resp.Auth[responseKey(key)] = credentialproviderv1.AuthConfig{Username: c.Username, Password: c.Password}
	}
	return resp, nil
}

// sameRegistry reports whether a config key's host (a glob allowed) is the image's registry host.
func sameRegistry(key, host string) bool {
	if dockerconfig.IsDockerHub(key) {
		return host == dockerconfig.DockerHubDomain
	}
	return dockerconfig.URLsMatch(dockerconfig.KeyHost(key), host)
}

// responseKey turns a config key into the schemeless pattern the kubelet matches images against.
func responseKey(key string) string {
	if dockerconfig.IsDockerHub(key) {
		return dockerconfig.DockerHubDomain
	}
	return strings.TrimSuffix(dockerconfig.NormalizeKey(key), "/")
}
