//go:build e2e

package e2e

import (
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// accessEnv is a registry-kit serve whose users and access policy were made with `registry-kit htpasswd add
// --role`: admin (admin on **), puller (pull on **) and teama (push on team-a/**).
type accessEnv struct {
	s         *serveInstance
	src       *srcImage
	passwords map[string]string
	view      map[string]registryView // per user
}

func (e *accessEnv) secrets() []string {
	var s []string
	for _, p := range e.passwords {
		s = append(s, p)
	}
	return s
}

func startAccessServe(t *testing.T) *accessEnv {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	e := &accessEnv{passwords: map[string]string{}, view: map[string]registryView{}}
	for _, u := range []struct{ user, role, repos string }{
		{"admin", "admin", "**"}, {"puller", "pull", "**"}, {"teama", "push", "team-a/**"},
	} {
		e.passwords[u.user] = rand.Text()
		rk := newCLI(t, binary(t), e.secrets())
		rk.must(e.passwords[u.user]+"\n", "htpasswd", "add", "--file", file, "--user", u.user, "--password-stdin",
			"--cost", "5", "--role", u.role, "--repos", u.repos)
	}
	list := newCLI(t, binary(t), e.secrets()).must("", "htpasswd", "list", "--file", file)
	for _, want := range []string{"admin   pull,push,delete on **", "puller  pull on **", "teama   pull,push on team-a/**"} {
		if !strings.Contains(list, want) {
			t.Errorf("htpasswd list lacks %q:\n%s", want, list)
		}
	}
	// serve finds access-policy.yaml next to the htpasswd file.
	e.s = startServe(t, "--htpasswd", file, "--delete-enabled")
	if !strings.Contains(e.s.Output(), "access policy in effect") {
		t.Fatalf("serve did not load the access policy:\n%s", e.s.Output())
	}
	for u, p := range e.passwords {
		e.view[u] = registryView{addr: e.s.Addr, auth: &authn.Basic{Username: u, Password: p}}
	}
	e.src = newSrcImage(t, 2, 256<<10)
	img, err := layoutImage(e.src)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"team-a/app:v1", "team-b/x:v1"} {
		if err := remote.Write(e.view["admin"].ref(t, repo), img, remote.WithAuth(e.view["admin"].auth)); err != nil {
			t.Fatalf("admin pushing %s: %v", repo, err)
		}
	}
	t.Cleanup(func() {
		for _, p := range e.passwords {
			if strings.Contains(e.s.Output(), p) {
				t.Error("a password appears in the server output")
			}
		}
	})
	return e
}

var deniedRE = regexp.MustCompile(`(?i)denied|\b403\b|forbidden`)

// expectDenied checks a client command failed with a 403/denied, not a 401.
func expectDenied(t *testing.T, what, out string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want 403 denied; output:\n%s", what, out)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if deniedRE.MatchString(line) {
			t.Logf("%s was denied as it should: %s", what, strings.TrimSpace(line))
			return
		}
	}
	t.Errorf("%s failed (%v) without saying denied/403; output:\n%s", what, err, out)
}

// expectAbsent checks the registry stores nothing for repo: no tag answers and no repository directory exists.
func (e *accessEnv) expectAbsent(t *testing.T, repoRef string) {
	t.Helper()
	_, err := remote.Head(e.view["admin"].ref(t, repoRef), remote.WithAuth(e.view["admin"].auth))
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		t.Errorf("after a refused push, HEAD %s = %v, want 404", repoRef, err)
	}
	repo, _, _ := strings.Cut(repoRef, ":")
	if _, err := os.Stat(filepath.Join(e.s.DataDir, "docker", "registry", "v2", "repositories", repo)); err == nil {
		t.Errorf("a refused push left repository %s in the storage", repo)
	}
}

// TestAccessControlClients: a pull-only user's docker push, crane push, oras push and skopeo copy are refused with
// 403 denied and store nothing, while its pulls work; a team-a/** pusher cannot push to team-b; crane catalog shows
// each user only what they may pull; a delete by a user without delete is refused and the manifest stays.
func TestAccessControlClients(t *testing.T) {
	e := startAccessServe(t)
	reg := e.s.Addr
	puller := e.passwords["puller"]

	t.Run("docker", func(t *testing.T) {
		dir := startDaemon(t, "dockerd.sh")
		host := "DOCKER_HOST=unix://" + filepath.Join(dir, "docker.sock")
		docker := newCLI(t, needTool(t, "docker"), e.secrets(), host, "DOCKER_CONFIG="+t.TempDir())
		docker.must(puller, "login", "--username", "puller", "--password-stdin", reg)
		docker.must("", "pull", reg+"/team-b/x:v1")
		docker.must("", "load", "--input", e.src.DockerTar)
		docker.must("", "tag", dockerSrcRef, reg+"/team-b/docker:v1")
		out, err := docker.run("", "push", reg+"/team-b/docker:v1")
		expectDenied(t, "docker push as puller", out, err)
		e.expectAbsent(t, "team-b/docker:v1")
	})
	t.Run("crane", func(t *testing.T) {
		cfg, _ := dockerConfig(t, reg, "puller", puller)
		crane := newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfg)
		crane.must("", "pull", "--insecure", "--format", "oci", reg+"/team-a/app:v1", t.TempDir())
		out, err := crane.run("", "push", "--insecure", e.src.Layout, reg+"/team-b/crane:v1")
		expectDenied(t, "crane push as puller", out, err)
		e.expectAbsent(t, "team-b/crane:v1")
		// Overwriting an existing tag is refused too, and the tag keeps its image.
		out, err = crane.run("", "tag", "--insecure", reg+"/team-a/app:v1", "v2")
		expectDenied(t, "crane tag as puller", out, err)
		e.expectAbsentTag(t, "team-a/app:v2")
	})
	t.Run("oras", func(t *testing.T) {
		_, cfg := dockerConfig(t, reg, "puller", puller)
		oras := newCLI(t, needTool(t, "oras"), e.secrets())
		oras.must("", "pull", "--plain-http", "--registry-config", cfg, "--output", t.TempDir(), reg+"/team-b/x:v1")
		files := t.TempDir()
		if err := os.WriteFile(filepath.Join(files, "a.bin"), randomBytes(t, 1024), 0o644); err != nil {
			t.Fatal(err)
		}
		oras.dir = files
		out, err := oras.run("", "push", "--plain-http", "--registry-config", cfg, reg+"/team-b/oras:v1", "a.bin")
		expectDenied(t, "oras push as puller", out, err)
		e.expectAbsent(t, "team-b/oras:v1")
	})
	t.Run("skopeo", func(t *testing.T) {
		_, authfile := dockerConfig(t, reg, "puller", puller)
		skopeo := newCLI(t, needTool(t, "skopeo"), e.secrets())
		skopeo.must("", "copy", "--src-tls-verify=false", "--src-authfile", authfile, "docker://"+reg+"/team-b/x:v1",
			"oci:"+filepath.Join(t.TempDir(), "pulled")+":v1")
		out, err := skopeo.run("", "copy", "--dest-tls-verify=false", "--dest-authfile", authfile,
			"oci:"+e.src.Layout+":"+srcTag, "docker://"+reg+"/team-b/skopeo:v1")
		expectDenied(t, "skopeo copy as puller", out, err)
		e.expectAbsent(t, "team-b/skopeo:v1")
	})
	t.Run("team-a pusher", func(t *testing.T) {
		cfg, _ := dockerConfig(t, reg, "teama", e.passwords["teama"])
		crane := newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfg)
		crane.must("", "push", "--insecure", e.src.Layout, reg+"/team-a/new:v1")
		e.view["admin"].checkPushed(t, "team-a/new:v1", e.src, true)
		out, err := crane.run("", "push", "--insecure", e.src.Layout, reg+"/team-b/x:evil")
		expectDenied(t, "crane push to team-b as teama", out, err)
		e.expectAbsentTag(t, "team-b/x:evil")
		out, err = crane.run("", "pull", "--insecure", reg+"/team-b/x:v1", filepath.Join(t.TempDir(), "x.tar"))
		expectDenied(t, "crane pull of team-b as teama", out, err)
	})
	t.Run("catalog", func(t *testing.T) {
		for user, want := range map[string]string{
			"admin":  "team-a/app\nteam-a/new\nteam-b/x\n",
			"puller": "team-a/app\nteam-a/new\nteam-b/x\n",
			"teama":  "team-a/app\nteam-a/new\n",
		} {
			cfg, _ := dockerConfig(t, reg, user, e.passwords[user])
			crane := newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfg)
			if diff := cmp.Diff(want, crane.must("", "catalog", "--insecure", reg)); diff != "" {
				t.Errorf("crane catalog as %s (-want +got):\n%s", user, diff)
			}
		}
	})
	t.Run("delete", func(t *testing.T) {
		digest := e.src.Digest.String()
		for _, user := range []string{"teama", "puller"} {
			cfg, _ := dockerConfig(t, reg, user, e.passwords[user])
			crane := newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfg)
			out, err := crane.run("", "delete", "--insecure", reg+"/team-a/app@"+digest)
			expectDenied(t, "crane delete as "+user, out, err)
		}
		e.view["admin"].checkPushed(t, "team-a/app:v1", e.src, true) // still there, blob for blob
		cfg, _ := dockerConfig(t, reg, "admin", e.passwords["admin"])
		newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfg).must("", "delete", "--insecure", reg+"/team-b/x@"+digest)
	})
}

// expectAbsentTag checks a tag does not exist in a repository that does.
func (e *accessEnv) expectAbsentTag(t *testing.T, repoRef string) {
	t.Helper()
	_, err := remote.Head(e.view["admin"].ref(t, repoRef), remote.WithAuth(e.view["admin"].auth))
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		t.Errorf("after a refused push, HEAD %s = %v, want 404", repoRef, err)
	}
}
