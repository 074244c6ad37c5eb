package main

import (
	"bufio"
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

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

type kind int

const (
	kindFileServer kind = iota
	kindRK
	kindStock
)

// server is one process under test; user is "" when it runs without auth.
type server struct {
	name       string
	kind       kind
	dir, addr  string
	user, pass string
	cmd        *exec.Cmd
	log        *os.File
}

func (s *server) registry() bool { return s.kind != kindFileServer }

// writeHtpasswd writes an htpasswd file with one user and a random password, shared by registry-kit and stock.
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

// stockConfig mirrors what registry-kit serve gives the embedded distribution: filesystem storage, in-memory blob
// descriptor cache, no access log, info logging, Prometheus metrics on a debug address, manifest URLs allowed.
const stockConfig = `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
  debug:
    addr: %s
    prometheus:
      enabled: true
      path: /metrics
validation:
  manifests:
    urls:
      allow: ['^https?://']
%s`

func (s *server) start(ctx context.Context, cfg config, self, htpasswdFile, fileDir string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	s.addr = addr
	data := filepath.Join(s.dir, "data")
	switch s.kind {
	case kindFileServer:
		s.cmd = exec.CommandContext(ctx, self, "-fileserver", addr, fileDir)
	case kindRK:
		args := []string{"serve", "--addr", addr, "--data-dir", data, "--metrics-addr", metrics, "--log-level", "info"}
		if s.user != "" {
			args = append(args, "--htpasswd", htpasswdFile)
		} else {
			args = append(args, "--no-auth")
		}
		s.cmd = exec.CommandContext(ctx, cfg.rk, args...)
	case kindStock:
		authCfg := ""
		if s.user != "" {
			authCfg = fmt.Sprintf("auth:\n  htpasswd:\n    realm: bench\n    path: %s\n", htpasswdFile)
		}
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		conf := filepath.Join(s.dir, "config.yml")
		body := fmt.Appendf(nil, stockConfig, data, addr, hex.EncodeToString(secret), metrics, authCfg)
		if err := os.WriteFile(conf, body, 0o600); err != nil {
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
	probe := "http://" + addr + "/v2/"
	if !s.registry() {
		probe = "http://" + addr + "/"
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(probe); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(s.log.Name())
	return fmt.Errorf("not answering %s within 30s; output:\n%s", probe, out)
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	if s.log != nil {
		s.log.Close()
	}
	s.cmd = nil
}

func stopAll(servers []*server) {
	for _, s := range servers {
		s.stop()
	}
}

// memKB reads the process's peak (VmHWM) and current (VmRSS) resident set size in KiB.
func (s *server) memKB() (peak, cur int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			peak = n
		case "VmRSS":
			cur = n
		}
	}
	return peak, cur, sc.Err()
}
