package pullsecret

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ProbeRepository is the repository CanPush starts (and cancels) an upload in.
const ProbeRepository = "registry-kit/push-probe"

// CanPush reports whether username/password may push to the registry at server (host[:port]; loopback hosts are
// spoken to over plain HTTP), checked live without writing anything: it starts a blob upload in ProbeRepository
// (POST /v2/<repo>/blobs/uploads/) and, if the registry accepts it, cancels it at once (DELETE). A registry that
// refuses the upload (401, 403) means pull-only. Bearer-token registries are asked for a push-scoped token first.
// A rule that allows pushing only to some repositories is not seen: the probe tries one repository.
func CanPush(ctx context.Context, server, username, password string, rt http.RoundTripper) (bool, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	repo, err := name.NewRepository(server + "/" + ProbeRepository)
	if err != nil {
		return false, fmt.Errorf("checking push access to %s: %w", server, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PushScope)})
	if err != nil {
		// A token server refusing a push scope refuses the pull scope with it: not a push credential.
		if te, ok := err.(*transport.Error); ok && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return false, nil
		}
		return false, fmt.Errorf("checking push access to %s: %w", server, err)
	}
	client := &http.Client{Transport: tr}
	base := fmt.Sprintf("%s://%s", repo.Registry.Scheme(), repo.RegistryStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo.RepositoryStr()+"/blobs/uploads/", nil)
	if err != nil {
		return false, fmt.Errorf("checking push access to %s: %w", server, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("checking push access to %s: %w", server, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusCreated:
		cancelUpload(ctx, client, base, resp.Header.Get("Location"))
		return true, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, nil
	}
	return false, fmt.Errorf("checking push access to %s: starting an upload answered %s", server, resp.Status)
}

// cancelUpload deletes the upload the probe started; the registry purges it later if this fails.
func cancelUpload(ctx context.Context, client *http.Client, base, location string) {
	if location == "" {
		return
	}
	u, err := url.Parse(location)
	if err != nil {
		return
	}
	if !u.IsAbs() {
		b, _ := url.Parse(base)
		u = b.ResolveReference(u)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		return
	}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
}
