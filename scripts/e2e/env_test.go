//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

// toolDir is where scripts/setup.sh installs the Go-built tools (crane, oras, stock registry, conformance, crictl).
var toolDir = func() string {
	if d := os.Getenv("REGISTRY_KIT_CACHE"); d != "" {
		return filepath.Join(d, "bin")
	}
	return "/var/cache/registry-kit/bin"
}()

// needTool returns the path of an external program the test needs, failing the test (never skipping it) when the
// program is missing: scripts/setup.sh installs every one of them.
func needTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(toolDir, name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	t.Fatalf("%s is not installed (not on PATH nor in %s): run scripts/setup.sh", name, toolDir)
	return ""
}

// binary returns the registry-kit binary under test.
func binary(t testing.TB) string {
	t.Helper()
	if builtBinary == "" {
		t.Fatal("registry-kit binary was not built (TestMain did not run)")
	}
	return builtBinary
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveInstance is a running `registry-kit serve` process.
type serveInstance struct {
	Addr        string // host:port of the registry
	MetricsAddr string // host:port of /metrics
	DataDir     string
	User        string // "admin" when the server created its own user; "" with --no-auth or a given --htpasswd
	Password    string // the generated admin password; never print it

	t       testing.TB
	args    []string
	cmd     *exec.Cmd
	log     *lockedbuf.Buffer
	stopped bool
}

// startServe starts `registry-kit serve` with a fresh data directory, a free address on 127.0.0.1 and a free
// metrics address, unless args set --addr, --data-dir or --metrics-addr themselves, and waits until /healthz answers.
// The process is stopped when the test ends; its output is printed if the test failed.
func startServe(t testing.TB, args ...string) *serveInstance {
	t.Helper()
	s := &serveInstance{t: t, log: &lockedbuf.Buffer{}}
	has := func(flag string) (string, bool) {
		for i, a := range args {
			if a == flag && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, flag+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	full := []string{"serve"}
	if v, ok := has("--addr"); ok {
		s.Addr = v
	} else {
		s.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		full = append(full, "--addr", s.Addr)
	}
	if v, ok := has("--metrics-addr"); ok {
		s.MetricsAddr = v
	} else {
		s.MetricsAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		full = append(full, "--metrics-addr", s.MetricsAddr)
	}
	if v, ok := has("--data-dir"); ok {
		s.DataDir = v
	} else {
		s.DataDir = t.TempDir()
		full = append(full, "--data-dir", s.DataDir)
	}
	s.args = append(full, args...)
	s.start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("registry-kit serve output:\n%s", s.log.String())
		}
	})
	return s
}

func (s *serveInstance) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(binary(t), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting registry-kit serve: %v", err)
	}
	s.stopped = false
	if err := s.waitHealthy(30 * time.Second); err != nil {
		s.Stop()
		t.Fatalf("registry-kit serve did not become healthy: %v\noutput:\n%s", err, s.log.String())
	}
	if b, err := os.ReadFile(filepath.Join(s.DataDir, "admin-password")); err == nil {
		s.User, s.Password = "admin", strings.TrimSpace(string(b))
	}
}

func (s *serveInstance) waitHealthy(timeout time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get("http://" + s.Addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Wait for the process in the background from now on, so Stop can reap it.
				go func() { <-exited }()
				return nil
			}
		}
		select {
		case err := <-exited:
			s.stopped = true
			return fmt.Errorf("process exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no 200 from http://%s/healthz within %s", s.Addr, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits up to 30s for a clean exit, then kills the process group.
func (s *serveInstance) Stop() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// Kill ends the process with SIGKILL at once, as a crash would.
func (s *serveInstance) Kill() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for syscall.Kill(s.cmd.Process.Pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the server and starts it again on the same address, data directory and flags.
func (s *serveInstance) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Output returns what the server has printed so far (it never contains a password).
func (s *serveInstance) Output() string { return s.log.String() }
