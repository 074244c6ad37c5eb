//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// htpRun runs a program with stdin and returns its combined output and error. Output is only shown by callers
// that know it holds no password.
func htpRun(t *testing.T, stdin, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// basicStatus is the status of GET /v2/ with Basic credentials.
func basicStatus(t *testing.T, addr, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v2/: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestHtpasswdApacheInterop checks files written by Apache's htpasswd -B are read and verified by registry-kit (CLI
// and server), and files written by registry-kit are verified by Apache's htpasswd.
func TestHtpasswdApacheInterop(t *testing.T) {
	apache := needTool(t, "htpasswd")
	rk := binary(t)
	file := filepath.Join(t.TempDir(), "htpasswd")

	// Apache: one entry printed with -Bbn (cost 5, $2y$), one added to the file with -B -C 5 ... and -C 10.
	line, err := htpRun(t, "", apache, "-Bbn", "alice", "alice-apache-pw")
	if err != nil || !strings.HasPrefix(line, "alice:$2y$05$") {
		t.Fatalf("htpasswd -Bbn: err %v, entry does not start with alice:$2y$05$", err)
	}
	if err := os.WriteFile(file, []byte("# written by Apache htpasswd\n"+strings.TrimSpace(line)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := htpRun(t, "", apache, "-B", "-C", "5", "-b", file, "bob", "bob-apache-pw"); err != nil {
		t.Fatalf("htpasswd -B -C 5 -b: %v: %s", err, out)
	}
	if out, err := htpRun(t, "", apache, "-B", "-C", "10", "-b", file, "cora", "cora-apache-pw"); err != nil {
		t.Fatalf("htpasswd -B -C 10 -b: %v: %s", err, out)
	}

	verify := func(user, pass string) (string, error) {
		return htpRun(t, pass+"\n", rk, "htpasswd", "verify", "--file", file, "--user", user, "--password-stdin")
	}
	for _, u := range []struct{ user, pass string }{{"alice", "alice-apache-pw"}, {"bob", "bob-apache-pw"}, {"cora", "cora-apache-pw"}} {
		if out, err := verify(u.user, u.pass); err != nil {
			t.Errorf("registry-kit htpasswd verify of Apache's %s: %v: %s", u.user, err, out)
		}
	}
	for _, u := range []struct{ user, pass string }{{"alice", "wrong"}, {"nobody", "alice-apache-pw"}} {
		out, err := verify(u.user, u.pass)
		if err == nil {
			t.Errorf("verify %s with a wrong password succeeded", u.user)
		}
		if !strings.Contains(out, "user or password does not match") {
			t.Errorf("verify %s: output does not say \"user or password does not match\"", u.user)
		}
	}

	// registry-kit adds a user to Apache's file; Apache verifies it, and Apache's users survive the rewrite.
	if out, err := htpRun(t, "dave-rk-pw\n", rk, "htpasswd", "add", "--file", file, "--user", "dave", "--password-stdin", "--cost", "10"); err != nil {
		t.Fatalf("registry-kit htpasswd add: %v: %s", err, out)
	}
	for _, u := range []struct{ user, pass string }{{"dave", "dave-rk-pw"}, {"alice", "alice-apache-pw"}, {"bob", "bob-apache-pw"}} {
		if out, err := htpRun(t, "", apache, "-vb", file, u.user, u.pass); err != nil {
			t.Errorf("Apache htpasswd -vb %s on registry-kit's file: %v: %s", u.user, err, out)
		}
	}
	if _, err := htpRun(t, "", apache, "-vb", file, "dave", "wrong"); err == nil {
		t.Error("Apache accepted a wrong password for registry-kit's entry")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# written by Apache htpasswd\nalice:$2y$05$") {
		t.Error("registry-kit did not keep Apache's comment and first entry in place")
	}

	// A running server authenticates Apache's and registry-kit's users from the same file.
	s := startServe(t, "--htpasswd", file)
	for _, u := range []struct {
		user, pass string
		want       int
	}{
		{"alice", "alice-apache-pw", 200}, {"bob", "bob-apache-pw", 200}, {"cora", "cora-apache-pw", 200},
		{"dave", "dave-rk-pw", 200}, {"alice", "wrong", 401}, {"nobody", "x", 401},
	} {
		if got := basicStatus(t, s.Addr, u.user, u.pass); got != u.want {
			t.Errorf("GET /v2/ as %s: status %d, want %d", u.user, got, u.want)
		}
	}

	// An MD5 entry from Apache is refused with the line number.
	md5, err := htpRun(t, "", apache, "-bnm", "erin", "x")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(bad, append(data, []byte(strings.TrimSpace(md5)+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := htpRun(t, "", rk, "htpasswd", "list", "--file", bad)
	if err == nil || !strings.Contains(out, "line 6: user \"erin\": password hash uses Apache MD5 ($apr1$); only bcrypt is supported") {
		t.Errorf("list of a file with an MD5 entry: err %v, output %q", err, out)
	}
}

// TestHtpasswdLiveReload adds and removes users while `registry-kit serve` runs and checks with skopeo (a real
// registry client) that the changes take effect without a restart, including for a credential already cached.
func TestHtpasswdLiveReload(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	apache := needTool(t, "htpasswd")
	rk := binary(t)
	file := filepath.Join(t.TempDir(), "htpasswd")
	add := func(user, pass string) {
		t.Helper()
		if out, err := htpRun(t, pass+"\n", rk, "htpasswd", "add", "--file", file, "--user", user, "--password-stdin"); err != nil {
			t.Fatalf("htpasswd add %s: %v: %s", user, err, out)
		}
	}
	add("alice", "alice-pw")
	s := startServe(t, "--htpasswd", file)

	// alice pushes an image with go-containerregistry.
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(s.Addr+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})); err != nil {
		t.Fatalf("pushing as alice: %v", err)
	}

	authfile := filepath.Join(t.TempDir(), "auth.json")
	login := func(user, pass string) (string, error) {
		return htpRun(t, pass, skopeo, "login", "--tls-verify=false", "--authfile", authfile,
			"--username", user, "--password-stdin", s.Addr)
	}
	inspect := func() (string, error) {
		return htpRun(t, "", skopeo, "inspect", "--tls-verify=false", "--authfile", authfile, "--raw", "docker://"+s.Addr+"/team/app:v1")
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("within 10s: %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	if _, err := login("dave", "dave-pw"); err == nil {
		t.Fatal("skopeo login as dave succeeded before dave was added")
	}
	// Add dave while the server runs.
	add("dave", "dave-pw")
	eventually("skopeo login as dave after `registry-kit htpasswd add`", func() bool { _, err := login("dave", "dave-pw"); return err == nil })
	if out, err := inspect(); err != nil {
		t.Fatalf("skopeo inspect as dave: %v: %s", err, out)
	}
	// A copy within the registry as dave (pull + push), which also leaves dave's credential cached.
	if out, err := htpRun(t, "", skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--authfile", authfile, "docker://"+s.Addr+"/team/app:v1", "docker://"+s.Addr+"/team/app:v2"); err != nil {
		t.Fatalf("skopeo copy as dave: %v: %s", err, out)
	}

	// Remove dave: his cached credential stops working right after the reload.
	if out, err := htpRun(t, "", rk, "htpasswd", "delete", "--file", file, "--user", "dave"); err != nil {
		t.Fatalf("htpasswd delete: %v: %s", err, out)
	}
	eventually("dave's credentials still accepted after `registry-kit htpasswd delete`", func() bool {
		return basicStatus(t, s.Addr, "dave", "dave-pw") == http.StatusUnauthorized
	})
	if out, err := inspect(); err == nil {
		t.Error("skopeo inspect with dave's stored login succeeded after dave was deleted")
	} else if !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "authentication required") {
		t.Errorf("skopeo inspect failed, but not with an authentication error: %s", out)
	}
	if _, err := login("dave", "dave-pw"); err == nil {
		t.Error("skopeo login as deleted dave succeeded")
	}

	// Apache's htpasswd edits the live file in place: the new user works too; alice is untouched.
	if out, err := htpRun(t, "", apache, "-B", "-b", file, "erin", "erin-pw"); err != nil {
		t.Fatalf("Apache htpasswd -B -b: %v: %s", err, out)
	}
	eventually("skopeo login as erin after Apache's htpasswd added her", func() bool { _, err := login("erin", "erin-pw"); return err == nil })
	if out, err := inspect(); err != nil {
		t.Errorf("skopeo inspect as erin: %v: %s", err, out)
	}
	if got := basicStatus(t, s.Addr, "alice", "alice-pw"); got != http.StatusOK {
		t.Errorf("alice got %d after the other users changed", got)
	}

	// A file whose only line is bad (an MD5 entry for alice) is what counts: its bad line is reported, and nobody
	// is left to log in (TestHtpasswdBadLineAndDeletedFile covers a change that also keeps good lines).
	if err := os.WriteFile(file, []byte("alice:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually("erin still accepted after a new file without her", func() bool {
		return basicStatus(t, s.Addr, "erin", "erin-pw") == http.StatusUnauthorized
	})
	if got := basicStatus(t, s.Addr, "alice", "alice-pw"); got != http.StatusUnauthorized {
		t.Errorf("alice got %d with only an MD5 line for her in the file, want 401", got)
	}
	if !strings.Contains(s.Output(), "line=1") {
		t.Error("the server did not log the broken line's number")
	}
	for _, secret := range []string{"alice-pw", "dave-pw", "erin-pw", "BJqWWEGh6"} {
		if strings.Contains(s.Output(), secret) {
			t.Error("the server's log contains a password or hash")
		}
	}
}

// TestHtpasswdLiveReloadDocker logs in, pushes and pulls with a private Docker engine while a user is added and then
// removed from the htpasswd file of a running `registry-kit serve`.
func TestHtpasswdLiveReloadDocker(t *testing.T) {
	dockerBin := needTool(t, "docker")
	needTool(t, "dockerd")
	rk := binary(t)
	file := filepath.Join(t.TempDir(), "htpasswd")
	if out, err := htpRun(t, "alice-pw\n", rk, "htpasswd", "add", "--file", file, "--user", "alice", "--password-stdin"); err != nil {
		t.Fatalf("htpasswd add alice: %v: %s", err, out)
	}
	s := startServe(t, "--htpasswd", file)
	dir := startDaemon(t, "dockerd.sh")
	env := append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(dir, "docker.sock"), "DOCKER_CONFIG="+t.TempDir())
	docker := func(stdin string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, dockerBin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	login := func() (string, error) {
		return docker("frank-pw", "login", "--username", "frank", "--password-stdin", s.Addr)
	}

	if out, err := login(); err == nil || !strings.Contains(out, "401 Unauthorized") {
		t.Fatalf("docker login as frank before he exists: err %v, output %q", err, out)
	}
	if out, err := htpRun(t, "frank-pw\n", rk, "htpasswd", "add", "--file", file, "--user", "frank", "--password-stdin"); err != nil {
		t.Fatalf("htpasswd add frank: %v: %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := login()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker login as frank within 10s of adding him: %v: %s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Push and pull as frank.
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.Addr + "/frank/app:v1"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tar := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"load", "--input", tar}, {"push", ref}, {"rmi", ref}, {"pull", ref}} {
		if out, err := docker("", args...); err != nil {
			t.Fatalf("docker %s as frank: %v: %s", args[0], err, out)
		}
	}

	// Remove frank: docker's stored login stops working.
	if out, err := htpRun(t, "", rk, "htpasswd", "delete", "--file", file, "--user", "frank"); err != nil {
		t.Fatalf("htpasswd delete frank: %v: %s", err, out)
	}
	if out, err := docker("", "rmi", ref); err != nil {
		t.Fatalf("docker rmi: %v: %s", err, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		out, err := docker("", "pull", ref)
		if err != nil {
			if !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "no basic auth credentials") {
				t.Errorf("docker pull after frank was deleted failed, but not for authentication: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("docker pull with deleted frank's stored login still succeeds 10s after the delete")
		}
		if out, err := docker("", "rmi", ref); err != nil {
			t.Fatalf("docker rmi: %v: %s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out, err := login(); err == nil || !strings.Contains(out, "401 Unauthorized") {
		t.Errorf("docker login as deleted frank: err %v, output %q", err, out)
	}
}
