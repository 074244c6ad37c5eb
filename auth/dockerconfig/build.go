package dockerconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Entry is one registry's credentials to put in a .dockerconfigjson payload. Server is used verbatim as
// the key: pass it through NormalizeServer first.
type Entry struct {
	Server   string
	Username string
	Password string
	Email    string
}

// secretEntry has exactly the fields, in the order, that kubectl create secret docker-registry writes.
type secretEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// Build returns a .dockerconfigjson payload with one entry per Entry:
// {"auths":{SERVER:{"username":U,"password":P,"email":E,"auth":base64(U:P)}}}, byte-for-byte what
// `kubectl create secret docker-registry --docker-server=SERVER ...` produces for a single entry.
func Build(entries ...Entry) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("building .dockerconfigjson: no registry entries")
	}
	auths := make(map[string]secretEntry, len(entries))
	var errs []error
	for _, e := range entries {
		if err := e.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := auths[e.Server]; dup {
			errs = append(errs, fmt.Errorf("server %q given twice", e.Server))
			continue
		}
		auths[e.Server] = secretEntry{
			Username: e.Username,
			Password: e.Password,
			Email:    e.Email,
			Auth:     EncodeAuth(e.Username, e.Password),
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("building .dockerconfigjson: %w", err)
	}
	return json.Marshal(struct {
		Auths map[string]secretEntry `json:"auths"`
	}{auths})
}

func (e Entry) validate() error {
	var errs []error
	if e.Server == "" {
		errs = append(errs, errors.New("server is empty"))
	}
	if e.Username == "" {
		errs = append(errs, fmt.Errorf("username for %q is empty", e.Server))
	}
	if strings.Contains(e.Username, ":") {
		errs = append(errs, fmt.Errorf("username for %q contains ':' (the auth field is user:password, so the kubelet would split it wrongly)", e.Server))
	}
	if e.Password == "" {
		errs = append(errs, fmt.Errorf("password for %q is empty", e.Server))
	}
	return errors.Join(errs...)
}
