package dockerconfig

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Secret types and data keys, as in k8s.io/api/core/v1 (kept here so this package does not need client-go).
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        = "kubernetes.io/dockercfg"
	DockerConfigJSONKey        = ".dockerconfigjson"
	DockercfgKey               = ".dockercfg"
)

// ErrNoAuths is returned by ParseSecretData when a .dockerconfigjson payload has no "auths" object.
var ErrNoAuths = errors.New(`no "auths" object`)

// Credential is one registry entry of a docker config. Username and Password are the effective values:
// when the entry has an "auth" field they are decoded from it, as the kubelet does.
type Credential struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Email         string `json:"email,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Config is a docker config.json or the payload of a pull Secret. CredsStore and CredHelpers only
// appear in a developer's config.json; the kubelet ignores them.
type Config struct {
	Auths       map[string]Credential `json:"auths"`
	CredsStore  string                `json:"credsStore,omitempty"`
	CredHelpers map[string]string     `json:"credHelpers,omitempty"`
}

// Keys returns the entry keys in sorted order.
func (c *Config) Keys() []string {
	keys := make([]string, 0, len(c.Auths))
	for k := range c.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Parse parses a docker config.json or .dockerconfigjson payload ({"auths": {...}, ...}).
// A missing "auths" object yields an empty Config. Errors never include the payload.
func Parse(data []byte) (*Config, error) {
	var raw struct {
		Auths       map[string]Credential `json:"auths"`
		CredsStore  string                `json:"credsStore"`
		CredHelpers map[string]string     `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parsing docker config: %w", sanitizeJSONError(err))
	}
	cfg := &Config{Auths: raw.Auths, CredsStore: raw.CredsStore, CredHelpers: raw.CredHelpers}
	if err := cfg.decodeAuths(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseDockercfg parses the legacy .dockercfg format: the server map without the "auths" wrapper.
func ParseDockercfg(data []byte) (*Config, error) {
	var auths map[string]Credential
	if err := json.Unmarshal(data, &auths); err != nil {
		return nil, fmt.Errorf("parsing .dockercfg: %w", sanitizeJSONError(err))
	}
	cfg := &Config{Auths: auths}
	if err := cfg.decodeAuths(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseSecretData parses the data of a Secret of type kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg, the two types the kubelet reads pull credentials from.
func ParseSecretData(secretType string, data map[string][]byte) (*Config, error) {
	switch secretType {
	case SecretTypeDockerConfigJSON:
		b, ok := data[DockerConfigJSONKey]
		if !ok || len(b) == 0 {
			return nil, fmt.Errorf("secret of type %s has no %s key", secretType, DockerConfigJSONKey)
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", DockerConfigJSONKey, sanitizeJSONError(err))
		}
		if _, ok := probe["auths"]; !ok {
			return nil, fmt.Errorf("parsing %s: %w (a legacy .dockercfg payload belongs in a secret of type %s)",
				DockerConfigJSONKey, ErrNoAuths, SecretTypeDockercfg)
		}
		return Parse(b)
	case SecretTypeDockercfg:
		b, ok := data[DockercfgKey]
		if !ok || len(b) == 0 {
			return nil, fmt.Errorf("secret of type %s has no %s key", secretType, DockercfgKey)
		}
		return ParseDockercfg(b)
	default:
		return nil, fmt.Errorf("secret type %q is not a pull secret type (want %s or %s)",
			secretType, SecretTypeDockerConfigJSON, SecretTypeDockercfg)
	}
}

// decodeAuths fills Username/Password from each entry's "auth" field, as the kubelet does.
func (c *Config) decodeAuths() error {
	if c.Auths == nil {
		c.Auths = map[string]Credential{}
	}
	for key, cred := range c.Auths {
		if cred.Auth == "" {
			continue
		}
		user, pass, err := DecodeAuth(cred.Auth)
		if err != nil {
			return fmt.Errorf("decoding the auth field of entry %q: %w", key, err)
		}
		cred.Username, cred.Password = user, pass
		c.Auths[key] = cred
	}
	return nil
}

// DecodeAuth decodes an "auth" field, base64(username:password), padded or not, like the kubelet.
// Its errors never contain the field's value.
func DecodeAuth(field string) (username, password string, err error) {
	var decoded []byte
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		decoded, err = base64.StdEncoding.DecodeString(field)
	} else {
		decoded, err = base64.RawStdEncoding.DecodeString(field)
	}
	if err != nil {
		return "", "", errors.New("not valid base64")
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", errors.New("not of the form base64(username:password)")
	}
	return user, pass, nil
}

// EncodeAuth returns base64(username:password), the "auth" field docker and kubectl write.
func EncodeAuth(username, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
}

// sanitizeJSONError keeps a JSON error's position but drops anything that could quote the payload.
func sanitizeJSONError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("invalid JSON at byte offset %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("invalid JSON: field %q holds a %s, want %s", typ.Field, typ.Value, typ.Type)
	}
	return errors.New("invalid JSON")
}
