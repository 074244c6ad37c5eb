//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// nonRootUID is the user the Dockerfile runs as.
const nonRootUID = 65532

// TestImage builds the repository's Dockerfile with a private Debian Docker engine (FROM scratch: nothing is pulled),
// runs it as documented (published port, a named volume on /var/lib/registry), reads the generated admin password
// out of the container, logs in, pushes and pulls, and checks that the server runs as a non-root user.
func TestImage(t *testing.T) {
	dir := startDaemon(t, "dockerd.sh")
	docker := newCLI(t, needTool(t, "docker"), nil, "DOCKER_HOST=unix://"+filepath.Join(dir, "docker.sock"), "DOCKER_CONFIG="+t.TempDir())
	suffix := strings.ToLower(rand.Text()[:8])
	image := "registry-kit:e2e-" + suffix

	start := time.Now()
	docker.must("", "build", "--tag", image, buildContext(t))
	size := strings.TrimSpace(docker.must("", "image", "inspect", "--format", "{{.Size}}", image))
	t.Logf("built %s in %s, %s bytes", image, time.Since(start).Round(time.Millisecond), size)
	if user := strings.TrimSpace(docker.must("", "image", "inspect", "--format", "{{.Config.User}}", image)); user != fmt.Sprintf("%d:%d", nonRootUID, nonRootUID) {
		t.Errorf("image user is %q, want %d:%d", user, nonRootUID, nonRootUID)
	}

	// `docker run -p` with --iptables=false: a user-defined bridge, reached through docker-proxy on 127.0.0.1.
	network, volume, container := "rk-e2e-"+suffix, "rk-e2e-data-"+suffix, "rk-e2e-"+suffix
	docker.must("", "network", "create", "--opt", "com.docker.network.bridge.name="+network, network)
	docker.must("", "volume", "create", volume)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	docker.must("", "run", "--detach", "--name", container, "--network", network,
		"--publish", addr+":5000", "--volume", volume+":/var/lib/registry", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := docker.run("", "logs", container)
			t.Logf("container output:\n%s", out)
		}
	})
	waitHealthz(t, docker, container, addr)

	password := adminPassword(t, docker, container)
	docker.secrets = []string{password}
	logs := docker.must("", "logs", container)
	if strings.Contains(logs, password) {
		t.Error("the admin password appears in the container's output")
	}
	if !strings.Contains(logs, "/var/lib/registry/admin-password") {
		t.Errorf("the container's output does not say where the admin password is:\n%s", logs)
	}
	checkNonRoot(t, docker, container)
	checkCABundle(t, docker, container)

	// Log in; push the image itself; push a small image, remove it locally and pull it back.
	out, err := docker.run("wrong-"+password, "login", "--username", "admin", "--password-stdin", addr)
	expectUnauthorized(t, "docker login", out, err)
	docker.must(password, "login", "--username", "admin", "--password-stdin", addr)
	view := registryView{addr: addr, auth: &authn.Basic{Username: "admin", Password: password}}
	pushed := map[string]string{}
	push := func(local, repo string) {
		t.Helper()
		docker.must("", "tag", local, addr+"/"+repo)
		out := docker.must("", "push", addr+"/"+repo)
		m := dockerDigestRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("docker push printed no digest:\n%s", out)
		}
		if got := view.checkBlobs(t, repo); got.String() != m[1] {
			t.Errorf("registry has %s for %s, docker pushed %s", got, repo, m[1])
		}
		pushed[repo] = m[1]
	}
	push(image, "registry-kit:e2e")
	src := newSrcImage(t, 2, 256<<10)
	docker.must("", "load", "--input", src.DockerTar)
	small := addr + "/e2e/small:v1"
	push(dockerSrcRef, "e2e/small:v1")
	docker.must("", "rmi", small, dockerSrcRef)
	if _, err := docker.run("", "image", "inspect", src.Config.String()); err == nil {
		t.Fatal("image still present locally after docker rmi")
	}
	docker.must("", "pull", small)
	if got := strings.TrimSpace(docker.must("", "image", "inspect", "--format", "{{.Id}}", small)); got != src.Config.String() {
		t.Errorf("pulled image ID %s, pushed %s", got, src.Config)
	}

	// A new container on the same volume keeps the images and the password.
	docker.must("", "rm", "--force", container)
	docker.must("", "run", "--detach", "--name", container, "--network", network,
		"--publish", addr+":5000", "--volume", volume+":/var/lib/registry", image)
	waitHealthz(t, docker, container, addr)
	if got := adminPassword(t, docker, container); got != password {
		t.Error("a new container on the same volume generated a new admin password")
	}
	for repo, digest := range pushed {
		if got := view.checkBlobs(t, repo); got.String() != digest {
			t.Errorf("after recreating the container the registry has %s for %s, want %s", got, repo, digest)
		}
	}
}

// buildContext makes a Docker build context holding the repository's Dockerfile, .dockerignore and every path the
// .dockerignore lets in ("!path" lines), with bin/registry-kit replaced by the binary under test, so the image is
// built from what this run tested rather than whatever bin/ holds.
func buildContext(t *testing.T) string {
	t.Helper()
	bin := binary(t)
	requireStatic(t, bin)
	ctx := t.TempDir()
	ignore := filepath.Join(repoRoot, ".dockerignore")
	f, err := os.Open(ignore)
	if err != nil {
		t.Fatalf("reading .dockerignore: %v", err)
	}
	defer f.Close()
	paths := []string{"Dockerfile", ".dockerignore"}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "!"); ok {
			paths = append(paths, strings.TrimSuffix(p, "/"))
		}
	}
	for _, p := range paths {
		src, dst := filepath.Join(repoRoot, p), filepath.Join(ctx, p)
		switch p {
		case "bin/registry-kit":
			src = bin
		case "bin/ca-certificates.crt": // what make image-docker copies there
			src = hostCABundle
		}
		if err := copyPath(src, dst); err != nil {
			t.Fatalf("preparing the build context: %v", err)
		}
	}
	return ctx
}

// hostCABundle is the build host's CA bundle (Debian's ca-certificates), which the image carries for HTTPS peers.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// requireStatic fails the test when bin has a dynamic loader: it could not run on a scratch image.
func requireStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("reading %s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked (build it with CGO_ENABLED=0): it cannot run on a scratch image", bin)
		}
	}
}

func copyPath(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.CopyFS(dst, os.DirFS(src))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitHealthz waits until the registry in the container answers /healthz through the published port.
func waitHealthz(t *testing.T, docker *cli, container, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := docker.run("", "logs", container)
			t.Fatalf("no 200 from http://%s/healthz within 30s (last error: %v); container output:\n%s", addr, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// adminPassword reads /var/lib/registry/admin-password out of the container (the image has no shell, so `docker cp`
// to stdout, which writes a tar stream), checking that it is a regular file of mode 0600 owned by the non-root user.
func adminPassword(t *testing.T, docker *cli, container string) string {
	t.Helper()
	t.Logf("$ docker cp %s:/var/lib/registry/admin-password -", container)
	cmd := docker.command("cp", container+":/var/lib/registry/admin-password", "-")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker cp of the admin password: %v", err)
	}
	tr := tar.NewReader(strings.NewReader(string(out)))
	h, err := tr.Next()
	if err != nil {
		t.Fatalf("reading docker cp output: %v", err)
	}
	if h.Typeflag != tar.TypeReg || h.Mode&0o777 != 0o600 || h.Uid != nonRootUID {
		t.Errorf("admin-password is type %c mode %o uid %d, want a regular file, 0600, uid %d", h.Typeflag, h.Mode&0o777, h.Uid, nonRootUID)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("reading docker cp output: %v", err)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("docker cp returned more than the password file")
	}
	pw := strings.TrimSpace(string(b))
	if len(pw) < 16 {
		t.Fatalf("admin password is %d characters, want a long random one", len(pw))
	}
	return pw
}

// checkNonRoot checks that the container's main process runs with every uid and gid set to the non-root user.
func checkNonRoot(t *testing.T, docker *cli, container string) {
	t.Helper()
	pid := strings.TrimSpace(docker.must("", "inspect", "--format", "{{.State.Pid}}", container))
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("reading the container process's status: %v", err)
	}
	want := fmt.Sprintf("%d\t%d\t%d\t%d", nonRootUID, nonRootUID, nonRootUID, nonRootUID)
	for _, line := range strings.Split(string(b), "\n") {
		for _, field := range []string{"Uid:", "Gid:"} {
			if v, ok := strings.CutPrefix(line, field); ok && strings.TrimSpace(v) != want {
				t.Errorf("container process %s %s, want %s", field, strings.TrimSpace(v), want)
			}
		}
	}
	t.Logf("container process %s runs as uid/gid %d", pid, nonRootUID)
}

// checkCABundle checks the image carries the host's CA bundle where Go's crypto/x509 looks for it, so the server
// can reach HTTPS peers such as an S3 endpoint.
func checkCABundle(t *testing.T, docker *cli, container string) {
	t.Helper()
	want, err := os.ReadFile(hostCABundle)
	if err != nil {
		t.Fatalf("reading the host CA bundle: %v", err)
	}
	out, err := docker.command("cp", container+":"+hostCABundle, "-").Output()
	if err != nil {
		t.Fatalf("docker cp of %s: %v", hostCABundle, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("reading docker cp output: %v", err)
	}
	got, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("reading docker cp output: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s in the image has %d bytes, want the host's %d", hostCABundle, len(got), len(want))
	}
}
