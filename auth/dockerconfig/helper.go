package dockerconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
)

// ErrNotFound is returned by Lookup when the config holds no credentials for the server.
var ErrNotFound = errors.New("no credentials found")

// helperTokenUser is the username docker stores with an identity token in a credential helper.
const helperTokenUser = "<token>"

// DefaultHelperTimeout bounds one run of a credential helper when the context has no earlier deadline: a helper
// that waits for a locked keychain or a prompt nobody answers must not hang the command.
const DefaultHelperTimeout = 30 * time.Second

// helperTimeout is DefaultHelperTimeout; tests shorten it.
var helperTimeout = DefaultHelperTimeout

// ErrHelperTimeout is returned (wrapped) when a credential helper did not answer in time.
var ErrHelperTimeout = errors.New("credential helper did not answer in time")

// Lookup is LookupContext with a background context: a helper run is bounded by DefaultHelperTimeout only.
func (c *Config) Lookup(server string) (Credential, error) {
	return c.LookupContext(context.Background(), server)
}

// LookupContext returns the username and password a docker config.json holds for server (a key from
// NormalizeServer), the way the docker CLI finds them: credHelpers[server], else credsStore, by running
// `docker-credential-<helper> get`; else the "auths" entry, whose key may carry a scheme or /v1/ path.
// The helper is killed when ctx ends or after DefaultHelperTimeout, whichever comes first.
// The kubelet cannot use identity tokens, so an entry holding only one is an error.
// Errors name the server and the helper but never contain a credential.
func (c *Config) LookupContext(ctx context.Context, server string) (Credential, error) {
	// The docker CLI keys credentials by registry host only (Docker Hub by DockerHubKey).
	dockerKey := KeyHost(server)
	if IsDockerHub(server) {
		dockerKey = DockerHubKey
	}
	if helper := c.helperFor(dockerKey); helper != "" {
		return lookupHelper(ctx, helper, dockerKey)
	}
	cred, key, ok := c.auth(server)
	if !ok && dockerKey != server {
		cred, key, ok = c.auth(dockerKey)
	}
	if !ok {
		return Credential{}, fmt.Errorf("%w for %q in the docker config (it has entries for: %s)", ErrNotFound, server, listKeys(c.Keys()))
	}
	return usable(cred, fmt.Sprintf("entry %q", key), server)
}

// helperFor returns the credential helper the docker CLI would use for dockerKey, or "".
func (c *Config) helperFor(dockerKey string) string {
	candidates := []string{dockerKey}
	if dockerKey == DockerHubKey {
		candidates = append(candidates, DockerHubDomain, dockerHubIndex)
	}
	for _, k := range candidates {
		if h, ok := c.CredHelpers[k]; ok && h != "" {
			return h
		}
	}
	return c.CredsStore
}

// auth finds the "auths" entry for dockerKey: the exact key, else a key equal once its scheme and API path
// are dropped.
func (c *Config) auth(dockerKey string) (Credential, string, bool) {
	if cred, ok := c.Auths[dockerKey]; ok {
		return cred, dockerKey, true
	}
	for _, k := range c.Keys() {
		if normalizeKey(k) == normalizeKey(dockerKey) || (dockerKey == DockerHubKey && IsDockerHub(k)) {
			return c.Auths[k], k, true
		}
	}
	return Credential{}, "", false
}

func lookupHelper(ctx context.Context, helper, serverURL string) (Credential, error) {
	prog := "docker-credential-" + helper
	if _, err := exec.LookPath(prog); err != nil {
		return Credential{}, fmt.Errorf("credential helper %s for %q is not on PATH (set by credsStore/credHelpers in the docker config)", prog, serverURL)
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	start := time.Now()
	creds, err := client.Get(contextProgramFunc(ctx, prog), serverURL)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return Credential{}, fmt.Errorf("running credential helper %s get for %q: %w", prog, serverURL, ctx.Err())
	case ctx.Err() != nil:
		return Credential{}, fmt.Errorf("%w: %s get for %q gave no answer in %s (waiting for a locked keychain or a prompt?)",
			ErrHelperTimeout, prog, serverURL, time.Since(start).Round(time.Millisecond))
	case credentials.IsErrCredentialsNotFound(err):
		return Credential{}, fmt.Errorf("%w for %q in credential helper %s", ErrNotFound, serverURL, prog)
	case err != nil:
		return Credential{}, fmt.Errorf("running credential helper %s get for %q: %s", prog, serverURL, helperMessage(err))
	}
	cred := Credential{Username: creds.Username, Password: creds.Secret}
	if creds.Username == helperTokenUser {
		cred = Credential{IdentityToken: creds.Secret}
	}
	return usable(cred, "credential helper "+prog, serverURL)
}

// contextProgramFunc runs a credential helper as client.NewShellProgramFunc does (its stderr is the user's, for a
// prompt), but killed when ctx ends; WaitDelay stops waiting for output a lingering child still holds open.
func contextProgramFunc(ctx context.Context, prog string) client.ProgramFunc {
	return func(args ...string) client.Program {
		cmd := exec.CommandContext(ctx, prog, args...)
		cmd.Stderr = os.Stderr
		cmd.WaitDelay = time.Second
		return &helperProgram{cmd: cmd}
	}
}

type helperProgram struct{ cmd *exec.Cmd }

func (p *helperProgram) Output() ([]byte, error) { return p.cmd.Output() }
func (p *helperProgram) Input(in io.Reader)      { p.cmd.Stdin = in }

// helperMessage keeps the helper's own error text (its protocol puts the message on stdout) short and on
// one line. A JSON decoding error from client.Get never quotes the payload.
func helperMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error getting credentials - ")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " ..."
	}
	if len(msg) > 200 {
		msg = msg[:200] + " ..."
	}
	return msg
}

func usable(cred Credential, from, server string) (Credential, error) {
	if cred.Username == "" && cred.Password == "" {
		if cred.IdentityToken != "" {
			return Credential{}, fmt.Errorf("%s for %q holds an identity token (docker login with OAuth), which the kubelet cannot use; log in with a username and password or token", from, server)
		}
		return Credential{}, fmt.Errorf("%w: %s for %q has no username or password", ErrNotFound, from, server)
	}
	if cred.Username == "" || cred.Password == "" {
		return Credential{}, fmt.Errorf("%s for %q has a username or a password but not both", from, server)
	}
	return Credential{Username: cred.Username, Password: cred.Password, Email: cred.Email}, nil
}

func listKeys(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}
