//go:build e2e

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerConfig writes a docker config.json holding user:password for registry in a new directory, and returns
// the directory (for DOCKER_CONFIG) and the file (for --authfile / --registry-config).
func dockerConfig(t *testing.T, registry, user, password string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	b, err := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// cli runs one client program with a fixed environment, logging each command with secrets redacted and never
// printing a secret in its output either.
type cli struct {
	t       *testing.T
	bin     string
	env     []string
	secrets []string
	dir     string // working directory; "" for the test's
}

func newCLI(t *testing.T, bin string, secrets []string, env ...string) *cli {
	return &cli{t: t, bin: bin, env: env, secrets: secrets}
}

// run runs the program with args, feeding stdin, and returns its combined output (secrets redacted).
func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	c.t.Logf("$ %s %s", filepath.Base(c.bin), redact(strings.Join(args, " "), c.secrets...))
	cmd := c.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := runTimeout(cmd, 3*time.Minute)
	return redact(string(out), c.secrets...), err
}

// command returns the program's command with args, for callers that need its raw output.
func (c *cli) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	return cmd
}

// must runs the program and fails the test when it fails.
func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", filepath.Base(c.bin), redact(strings.Join(args, " "), c.secrets...), err, out)
	}
	return out
}

func runTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return buf.Bytes(), fmt.Errorf("timed out after %s", d)
	}
}

var unauthorizedRE = regexp.MustCompile(`(?i)unauthori[sz]ed|\b401\b`)

// expectUnauthorized checks that a client command given wrong credentials failed and said why: "unauthorized" or
// "401", or one of the tool's own wordings for an HTTP 401 given in also.
func expectUnauthorized(t *testing.T, what, out string, err error, also ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s with a wrong password succeeded, want a 401 failure; output:\n%s", what, out)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		if unauthorizedRE.MatchString(line) || slices.ContainsFunc(also, func(a string) bool { return strings.Contains(line, a) }) {
			t.Logf("%s with a wrong password failed as it should: %s", what, strings.TrimSpace(line))
			return
		}
	}
	t.Errorf("%s with a wrong password failed (%v) without saying unauthorized/401; output:\n%s", what, err, out)
}

// startDaemon runs scripts/tools/<script> start in a new short directory and stops it when the test ends.
func startDaemon(t *testing.T, script string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rk-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repoRoot, "scripts", "tools", script)
	t.Cleanup(func() {
		if out, err := exec.Command(path, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("%s stop: %v\n%s", script, err, out)
		}
		if t.Failed() {
			for _, log := range []string{"dockerd.log", "containerd.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, log)); err == nil {
					t.Logf("%s (last lines):\n%s", log, tail(string(b), 30))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	out, err := runTimeout(exec.Command(path, "start", dir), 60*time.Second)
	if err != nil {
		t.Fatalf("%s start: %v\n%s", script, err, out)
	}
	return dir
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Errorf("reading mounts: %v", err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	slices.Sort(points)
	slices.Reverse(points)
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", p, err)
		}
	}
}
