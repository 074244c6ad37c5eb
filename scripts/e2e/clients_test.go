//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// clientEnv is what every client subtest gets: the running server, the image to push, and a way to read the
// registry directly.
type clientEnv struct {
	s      *serveInstance
	src    *srcImage
	view   registryView
	wrong  string             // a wrong password for the admin user
	pushed map[string]v1.Hash // repo:tag -> manifest digest, for the restart check
}

func (e *clientEnv) secrets() []string { return []string{e.s.Password, e.wrong} }

// TestClients pushes and pulls a three-layer image through `registry-kit serve` (with its generated admin user) with
// docker, podman, skopeo, crane, oras and containerd's ctr, checks the pulled content against the pushed digests,
// checks that each client fails with 401 on a wrong password, and that a restart keeps every pushed image.
func TestClients(t *testing.T) {
	s := startServe(t)
	if s.User == "" || s.Password == "" {
		t.Fatal("serve did not create the admin user and its password file")
	}
	e := &clientEnv{
		s:      s,
		src:    newSrcImage(t, 3, 512<<10),
		view:   registryView{addr: s.Addr, auth: &authn.Basic{Username: s.User, Password: s.Password}},
		wrong:  "wrong-" + rand.Text(),
		pushed: map[string]v1.Hash{},
	}
	clients := []struct {
		name string
		run  func(t *testing.T, e *clientEnv)
	}{
		{"docker", dockerClient},
		{"podman", podmanClient},
		{"skopeo", skopeoClient},
		{"crane", craneClient},
		{"oras", orasClient},
		{"ctr", ctrClient},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) { c.run(t, e) })
	}
	t.Run("restart and crash keep every pushed image", func(t *testing.T) { restartCheck(t, e) })
	if strings.Contains(s.Output(), s.Password) {
		t.Error("the admin password appears in the server output")
	}
}

var dockerDigestRE = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

func dockerClient(t *testing.T, e *clientEnv) {
	dir := startDaemon(t, "dockerd.sh")
	host := "DOCKER_HOST=unix://" + filepath.Join(dir, "docker.sock")
	docker := newCLI(t, needTool(t, "docker"), e.secrets(), host, "DOCKER_CONFIG="+t.TempDir())
	reg, repo := e.s.Addr, "e2e/docker:v1"
	ref := reg + "/" + repo

	docker.must(e.s.Password, "login", "--username", e.s.User, "--password-stdin", reg)
	docker.must("", "load", "--input", e.src.DockerTar)
	docker.must("", "tag", dockerSrcRef, ref)
	out := docker.must("", "push", ref)
	m := dockerDigestRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("docker push printed no digest:\n%s", out)
	}
	// Docker recompresses layers on push, so the manifest differs from the source; the config (the image ID) and the
	// uncompressed layers do not.
	digest := e.view.checkPushed(t, repo, e.src, false)
	if digest.String() != m[1] {
		t.Errorf("docker push reported %s, the registry has %s", m[1], digest)
	}
	if cfg := configDigest(t, e, repo); cfg != e.src.Config {
		t.Errorf("config digest in the registry is %s, docker's image ID is %s", cfg, e.src.Config)
	}
	e.pushed[repo] = digest

	docker.must("", "rmi", ref, dockerSrcRef)
	if _, err := docker.run("", "image", "inspect", ref); err == nil {
		t.Fatal("image still present locally after docker rmi")
	}
	docker.must("", "pull", ref+"@"+digest.String())
	id := strings.TrimSpace(docker.must("", "image", "inspect", "--format", "{{.Id}}", ref+"@"+digest.String()))
	if id != e.src.Config.String() {
		t.Errorf("pulled image ID %s, want %s", id, e.src.Config)
	}
	repoDigests := docker.must("", "image", "inspect", "--format", "{{json .RepoDigests}}", ref+"@"+digest.String())
	if !strings.Contains(repoDigests, reg+"/e2e/docker@"+digest.String()) {
		t.Errorf("pulled image's RepoDigests %s lack %s", strings.TrimSpace(repoDigests), digest)
	}

	bad := newCLI(t, docker.bin, e.secrets(), host, "DOCKER_CONFIG="+t.TempDir())
	out, err := bad.run(e.wrong, "login", "--username", e.s.User, "--password-stdin", reg)
	expectUnauthorized(t, "docker login", out, err)
	wrongDir, _ := dockerConfig(t, reg, e.s.User, e.wrong)
	bad = newCLI(t, docker.bin, e.secrets(), host, "DOCKER_CONFIG="+wrongDir)
	out, err = bad.run("", "pull", ref)
	expectUnauthorized(t, "docker pull", out, err)
}

func podmanClient(t *testing.T, e *clientEnv) {
	root := t.TempDir()
	podman := newCLI(t, needTool(t, "podman"), e.secrets())
	base := []string{
		"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"),
		"--tmpdir", filepath.Join(root, "tmp"), "--storage-driver", "overlay", "--events-backend", "none",
	}
	p := func(args ...string) []string { return append(slices.Clone(base), args...) }
	// The overlay driver bind-mounts its home; unmount what is left under root before the temp dir goes. (Not
	// `podman system reset`: it would also prune the host's shared network definitions.)
	t.Cleanup(func() { unmountUnder(t, root) })
	reg, repo := e.s.Addr, "e2e/podman:v1"
	ref := reg + "/" + repo
	authfile := filepath.Join(t.TempDir(), "auth.json")

	podman.must(e.s.Password, p("login", "--authfile", authfile, "--tls-verify=false", "--username", e.s.User, "--password-stdin", reg)...)
	podman.must("", p("pull", "oci:"+e.src.Layout+":"+srcTag)...)
	podman.must("", p("tag", e.src.Config.Hex, ref)...)
	digestFile := filepath.Join(t.TempDir(), "digest")
	podman.must("", p("push", "--authfile", authfile, "--tls-verify=false", "--digestfile", digestFile, ref)...)
	b, err := os.ReadFile(digestFile)
	if err != nil {
		t.Fatalf("podman push wrote no digest file: %v", err)
	}
	digest := e.view.checkPushed(t, repo, e.src, false)
	if got := strings.TrimSpace(string(b)); got != digest.String() {
		t.Errorf("podman push reported %s, the registry has %s", got, digest)
	}
	e.pushed[repo] = digest

	podman.must("", p("rmi", "--force", e.src.Config.Hex)...)
	if _, err := podman.run("", p("image", "exists", ref)...); err == nil {
		t.Fatal("image still present locally after podman rmi")
	}
	podman.must("", p("pull", "--authfile", authfile, "--tls-verify=false", ref)...)
	got := strings.TrimSpace(podman.must("", p("image", "inspect", "--format", "{{.Digest}} {{.Id}}", ref)...))
	want := digest.String() + " " + configDigest(t, e, repo).Hex
	if got != want {
		t.Errorf("pulled image digest and ID %q, want %q", got, want)
	}

	wrongAuth := filepath.Join(t.TempDir(), "auth.json")
	out, err := podman.run(e.wrong, p("login", "--authfile", wrongAuth, "--tls-verify=false", "--username", e.s.User, "--password-stdin", reg)...)
	// containers/image words a 401 on login as "invalid username/password" (ErrUnauthorizedForCredentials).
	expectUnauthorized(t, "podman login", out, err, "invalid username/password")
	_, wrongFile := dockerConfig(t, reg, e.s.User, e.wrong)
	out, err = podman.run("", p("pull", "--authfile", wrongFile, "--tls-verify=false", ref)...)
	expectUnauthorized(t, "podman pull", out, err)
}

func skopeoClient(t *testing.T, e *clientEnv) {
	skopeo := newCLI(t, needTool(t, "skopeo"), e.secrets())
	reg, repo := e.s.Addr, "e2e/skopeo:v1"
	_, authfile := dockerConfig(t, reg, e.s.User, e.s.Password)

	skopeo.must("", "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-authfile", authfile,
		"oci:"+e.src.Layout+":"+srcTag, "docker://"+reg+"/"+repo)
	digest := e.view.checkPushed(t, repo, e.src, true)
	e.pushed[repo] = digest

	out := filepath.Join(t.TempDir(), "pulled")
	skopeo.must("", "copy", "--preserve-digests", "--src-tls-verify=false", "--src-authfile", authfile,
		"docker://"+reg+"/"+repo, "oci:"+out+":"+srcTag)
	checkLayout(t, out, srcTag, digest)

	_, wrong := dockerConfig(t, reg, e.s.User, e.wrong)
	o, err := skopeo.run("", "inspect", "--tls-verify=false", "--authfile", wrong, "docker://"+reg+"/"+repo)
	expectUnauthorized(t, "skopeo inspect", o, err)
	o, err = skopeo.run("", "copy", "--dest-tls-verify=false", "--dest-authfile", wrong,
		"oci:"+e.src.Layout+":"+srcTag, "docker://"+reg+"/e2e/skopeo-wrong:v1")
	expectUnauthorized(t, "skopeo copy (push)", o, err)
}

func craneClient(t *testing.T, e *clientEnv) {
	reg, repo := e.s.Addr, "e2e/crane:v1"
	cfgDir, _ := dockerConfig(t, reg, e.s.User, e.s.Password)
	crane := newCLI(t, needTool(t, "crane"), e.secrets(), "DOCKER_CONFIG="+cfgDir)

	crane.must("", "push", "--insecure", e.src.Layout, reg+"/"+repo)
	digest := e.view.checkPushed(t, repo, e.src, true)
	e.pushed[repo] = digest
	if got := strings.TrimSpace(crane.must("", "digest", "--insecure", reg+"/"+repo)); got != digest.String() {
		t.Errorf("crane digest says %s, want %s", got, digest)
	}

	out := filepath.Join(t.TempDir(), "pulled")
	crane.must("", "pull", "--insecure", "--format", "oci", reg+"/"+repo, out)
	checkLayout(t, out, "", digest)

	wrongDir, _ := dockerConfig(t, reg, e.s.User, e.wrong)
	bad := newCLI(t, crane.bin, e.secrets(), "DOCKER_CONFIG="+wrongDir)
	o, err := bad.run("", "manifest", "--insecure", reg+"/"+repo)
	expectUnauthorized(t, "crane manifest", o, err)
	o, err = bad.run("", "push", "--insecure", e.src.Layout, reg+"/e2e/crane-wrong:v1")
	expectUnauthorized(t, "crane push", o, err)
}

func orasClient(t *testing.T, e *clientEnv) {
	oras := newCLI(t, needTool(t, "oras"), e.secrets())
	reg, repo := e.s.Addr, "e2e/oras:v1"
	cfg := filepath.Join(t.TempDir(), "config.json")

	oras.must(e.s.Password, "login", "--plain-http", "--registry-config", cfg, "--username", e.s.User, "--password-stdin", reg)
	// The image, copied from the OCI layout and back.
	oras.must("", "cp", "--to-plain-http", "--to-registry-config", cfg, "--from-oci-layout", e.src.Layout+":"+srcTag, reg+"/"+repo)
	digest := e.view.checkPushed(t, repo, e.src, true)
	e.pushed[repo] = digest
	out := filepath.Join(t.TempDir(), "pulled")
	oras.must("", "cp", "--from-plain-http", "--from-registry-config", cfg, "--to-oci-layout", reg+"/"+repo, out+":"+srcTag)
	checkLayout(t, out, srcTag, digest)

	// An artifact of two files, oras's own push and pull.
	files := t.TempDir()
	want := map[string][]byte{"a.bin": randomBytes(t, 300<<10), "b.bin": randomBytes(t, 200<<10)}
	for n, b := range want {
		if err := os.WriteFile(filepath.Join(files, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	art := reg + "/e2e/oras-files:v1"
	oras.dir = files // oras push takes file names relative to the working directory
	oras.must("", "push", "--plain-http", "--registry-config", cfg, "--artifact-type", "application/vnd.registry-kit.e2e",
		"--export-manifest", filepath.Join(files, "manifest.json"), art, "a.bin", "b.bin")
	pulled := t.TempDir()
	oras.must("", "pull", "--plain-http", "--registry-config", cfg, "--output", pulled, art)
	for n, b := range want {
		got, err := os.ReadFile(filepath.Join(pulled, n))
		if err != nil {
			t.Errorf("oras pull did not write %s: %v", n, err)
		} else if !bytes.Equal(got, b) {
			t.Errorf("oras pull: %s differs from the pushed file", n)
		}
	}
	m, err := os.ReadFile(filepath.Join(files, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.pushed["e2e/oras-files:v1"] = e.view.checkManifestBytes(t, "e2e/oras-files:v1", m)

	wrong := filepath.Join(t.TempDir(), "config.json")
	o, err := oras.run(e.wrong, "login", "--plain-http", "--registry-config", wrong, "--username", e.s.User, "--password-stdin", reg)
	expectUnauthorized(t, "oras login", o, err)
	_, wrongCfg := dockerConfig(t, reg, e.s.User, e.wrong)
	o, err = oras.run("", "pull", "--plain-http", "--registry-config", wrongCfg, "--output", t.TempDir(), art)
	expectUnauthorized(t, "oras pull", o, err)
}

func ctrClient(t *testing.T, e *clientEnv) {
	dir := startDaemon(t, "containerd.sh")
	ctr := newCLI(t, needTool(t, "ctr"), e.secrets())
	c := func(args ...string) []string {
		return append([]string{"--address", filepath.Join(dir, "containerd.sock"), "--namespace", "e2e"}, args...)
	}
	reg, repo := e.s.Addr, "e2e/ctr:v1"
	ref := reg + "/" + repo
	creds := e.s.User + ":" + e.s.Password // ctr takes credentials only as an argument (or from a terminal)

	ctr.must("", c("images", "import", "--base-name", reg+"/e2e/ctr", e.src.OCIArchive)...)
	ctr.must("", c("images", "push", "--plain-http", "--user", creds, ref)...)
	digest := e.view.checkPushed(t, repo, e.src, true)
	e.pushed[repo] = digest

	ctr.must("", c("images", "rm", "--sync", ref)...)
	if content := ctr.must("", c("content", "ls", "--quiet")...); strings.Contains(content, e.src.Layers[0].String()) {
		t.Fatalf("layer %s still in containerd's content store after images rm --sync", e.src.Layers[0])
	}
	ctr.must("", c("images", "pull", "--plain-http", "--user", creds, ref)...) // unpacking checks the diff IDs
	list := ctr.must("", c("images", "ls")...)
	if !strings.Contains(list, digest.String()) {
		t.Errorf("ctr images ls does not show %s after the pull:\n%s", digest, list)
	}
	content := ctr.must("", c("content", "ls", "--quiet")...)
	for _, l := range e.src.Layers {
		if !strings.Contains(content, l.String()) {
			t.Errorf("layer %s missing from containerd's content store after the pull", l)
		}
	}

	o, err := ctr.run("", c("images", "pull", "--plain-http", "--user", e.s.User+":"+e.wrong, reg+"/e2e/skopeo:v1")...)
	expectUnauthorized(t, "ctr images pull", o, err)
	o, err = ctr.run("", c("images", "push", "--plain-http", "--user", e.s.User+":"+e.wrong, reg+"/e2e/ctr-wrong:v1", ref)...)
	expectUnauthorized(t, "ctr images push", o, err)
}

// restartCheck stops and starts the server on the same data directory, then kills and starts it, and checks each
// time that every image the clients pushed is still there, blob for blob. It pushes an image of its own first so it has something to check even when
// every client failed.
func restartCheck(t *testing.T, e *clientEnv) {
	own := "e2e/restart:v1"
	img, err := layoutImage(e.src)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.view.ref(t, own), img, remote.WithAuth(e.view.auth)); err != nil {
		t.Fatalf("pushing %s: %v", own, err)
	}
	want := map[string]v1.Hash{own: e.src.Digest}
	for r, d := range e.pushed {
		want[r] = d
	}
	check := func(after string) {
		t.Helper()
		for _, repo := range slices.Sorted(maps.Keys(want)) {
			if got := e.view.checkBlobs(t, repo); got != want[repo] {
				t.Errorf("after %s %s is %s, was %s", after, repo, got, want[repo])
			}
		}
	}
	e.s.Restart() // SIGTERM, then start again on the same data directory
	check("a restart")
	e.s.Kill() // SIGKILL, as a crash would
	e.s.start()
	check("a crash and start")
	t.Logf("after a restart and after a crash the registry still serves all %d pushed manifests and their blobs: %v",
		len(want), slices.Sorted(maps.Keys(want)))
}
