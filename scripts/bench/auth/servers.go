package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// server is one registry under test; user is "" when it runs without auth.
type server struct {
	name, dir, addr string
	user, pass      string
	cmd             *exec.Cmd
	log             *os.File
}

// writeHtpasswd writes an htpasswd file with one user at bcrypt cost 10 and a random password.
func writeHtpasswd(dir string) (path, user, pass string, err error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", "", "", err
	}
	user, pass = "bench", hex.EncodeToString(b)
	f := htpasswd.New()
	if err := f.Set(user, pass, htpasswd.DefaultCost); err != nil {
		return "", "", "", err
	}
	path = filepath.Join(dir, "htpasswd")
	return path, user, pass, f.WriteFile(path)
}

const stockConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s`

func (s *server) start(ctx context.Context, cfg config, htpasswdFile string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.addr = addr
	data := filepath.Join(s.dir, "data")
	switch s.name {
	case "rk-auth", "rk-noauth":
		args := []string{"serve", "--addr", addr, "--data-dir", data, "--metrics-addr", "", "--log-level", "warn"}
		if s.user != "" {
			args = append(args, "--htpasswd", htpasswdFile)
		} else {
			args = append(args, "--no-auth")
		}
		s.cmd = exec.CommandContext(ctx, cfg.rk, args...)
	default:
		authCfg := ""
		if s.user != "" {
			authCfg = fmt.Sprintf("auth:\n  htpasswd:\n    realm: bench\n    path: %s\n", htpasswdFile)
		}
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		conf := filepath.Join(s.dir, "config.yml")
		if err := os.WriteFile(conf, fmt.Appendf(nil, stockConfig, data, addr, hex.EncodeToString(secret), authCfg), 0o600); err != nil {
			return err
		}
		s.cmd = exec.CommandContext(ctx, cfg.stock, "serve", conf)
		s.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	}
	s.log, err = os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + addr + "/v2/"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(s.log.Name())
	return fmt.Errorf("not answering /v2/ on %s within 30s; output:\n%s", addr, out)
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if s.log != nil {
		_ = s.log.Close()
	}
}

// cpuTime is the user+system CPU time the server process has used, from /proc/PID/stat (clock ticks of 10ms).
func (s *server) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of %s: %w", s.name, err)
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc stat of %s", s.name)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc stat of %s", s.name)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func stopAll(servers []*server) {
	for _, s := range servers {
		s.stop()
	}
}

func (s *server) auth() authn.Authenticator {
	if s.user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: s.user, Password: s.pass}
}

// seed pushes the small image the manifest benchmark reads.
func (s *server) seed(ctx context.Context) error {
	img, err := random.Image(1024, 2)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(s.addr+"/bench/app:latest", name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithAuth(s.auth()), remote.WithContext(ctx))
}
