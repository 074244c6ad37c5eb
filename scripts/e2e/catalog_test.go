//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCatalogClients: /v2/_catalog lists what was pushed, to crane catalog (which asks n=1000) and to curl paging
// through it with n, last and the Link header; an n larger than the server's page is served in pages, not refused.
func TestCatalogClients(t *testing.T) {
	crane, curl := needTool(t, "crane"), needTool(t, "curl")
	srv := startServe(t)
	auth := basicHeader(srv.User, srv.Password)
	want := []string{"alpha", "delta", "epsilon", "team/beta", "team/gamma"}
	for i, repo := range []string{"team/gamma", "alpha", "epsilon", "team/beta", "delta"} {
		pushImageRaw(t, srv.Addr, auth, repo, "v1", fmt.Appendf(nil, "catalog layer %d", i))
	}

	cfgDir := t.TempDir()
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, srv.Addr, base64.StdEncoding.EncodeToString([]byte(srv.User+":"+srv.Password)))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(crane, "catalog", srv.Addr, "--insecure")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("crane catalog: %v: %s", err, redact(errOut.String(), srv.Password))
	}
	if got := strings.Fields(out.String()); !slices.Equal(got, want) {
		t.Errorf("crane catalog = %q, want %q", got, want)
	}

	// curl, two at a time, following Link: </v2/_catalog?last=...&n=2>; rel="next".
	curlGet := func(target string) (status int, link string, repos []string) {
		t.Helper()
		c := exec.Command(curl, "-sS", "-K", "-", "-D", "-", "http://"+srv.Addr+target)
		c.Stdin = strings.NewReader(fmt.Sprintf("user = %q\n", srv.User+":"+srv.Password)) // not in the process list
		b, err := c.Output()
		if err != nil {
			t.Fatalf("curl %s: %v", target, err)
		}
		head, body, _ := strings.Cut(string(b), "\r\n\r\n")
		if _, err := fmt.Sscanf(head, "HTTP/1.1 %d", &status); err != nil {
			t.Fatalf("curl %s: no status line in %q", target, head)
		}
		for _, l := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(l, "Link: "); ok {
				link = v
			}
		}
		var page struct{ Repositories []string }
		if status == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &page); err != nil {
				t.Fatalf("curl %s: body %q: %v", target, body, err)
			}
		}
		return status, link, page.Repositories
	}
	next := regexp.MustCompile(`^<([^>]+)>; rel="next"$`)
	var paged []string
	target := "/v2/_catalog?n=2"
	for pages := 0; target != ""; pages++ {
		if pages > len(want) {
			t.Fatal("the Link headers do not end")
		}
		status, link, repos := curlGet(target)
		if status != http.StatusOK || len(repos) > 2 {
			t.Fatalf("curl %s: status %d, %d repositories; want 200 and at most 2", target, status, len(repos))
		}
		paged = append(paged, repos...)
		target = ""
		if link != "" {
			m := next.FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("curl: Link %q is not <URL>; rel=\"next\"", link)
			}
			target = m[1]
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("catalog through curl in pages of 2 = %q, want %q", paged, want)
	}
	if status, link, repos := curlGet("/v2/_catalog?n=100000&last=delta"); status != http.StatusOK ||
		!slices.Equal(repos, want[2:]) || link != "" {
		t.Errorf("curl /v2/_catalog?n=100000&last=delta: status %d, %q, Link %q; want 200 %q and no Link", status, repos, link, want[2:])
	}
	if status, _, _ := curlGet("/v2/_catalog?n=-1"); status != http.StatusBadRequest {
		t.Errorf("curl /v2/_catalog?n=-1: status %d, want 400", status)
	}
}
