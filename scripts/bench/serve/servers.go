package main

import (
	"context"
	"net/http"
	"path/filepath"

	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
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
	proc       *benchserver.Process
}

func (s *server) registry() bool { return s.kind != kindFileServer }

// stockConfig mirrors what registry-kit serve gives the embedded distribution: filesystem storage, in-memory blob
// descriptor cache, no access log, info logging, Prometheus metrics on a debug address, manifest URLs allowed.
func stockConfig(data, addr, metrics, htpasswdFile string) benchserver.StockConfig {
	return benchserver.StockConfig{
		RootDir: data, Addr: addr, LogLevel: "info", Delete: false,
		InmemoryCache: true, NoUploadPurging: true, Nosniff: true,
		DebugAddr: metrics, AllowManifestURLs: true, Htpasswd: htpasswdFile,
	}
}

func (s *server) start(ctx context.Context, cfg config, htpasswdFile, fileDir string) error {
	addr, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	metrics, err := benchserver.FreeAddr()
	if err != nil {
		return err
	}
	s.addr = addr
	data := filepath.Join(s.dir, "data")
	auth := ""
	if s.user != "" {
		auth = htpasswdFile
	}
	switch s.kind {
	case kindFileServer:
		s.proc, err = benchserver.StartFileServer(ctx, s.dir, addr, fileDir)
	case kindRK:
		s.proc, err = benchserver.StartIn(ctx, s.dir, cfg.RK, benchserver.ServeArgs(addr, data, metrics, "info", auth)...)
	case kindStock:
		s.proc, err = benchserver.StartStock(ctx, cfg.Stock, s.dir, stockConfig(data, addr, metrics, auth))
	}
	if err != nil {
		return err
	}
	if !s.registry() {
		return s.proc.WaitReady("http://"+addr+"/", http.StatusOK, http.StatusUnauthorized)
	}
	return s.proc.WaitRegistry(addr)
}

func (s *server) stop() { s.proc.Stop() }

func stopAll(servers []*server) {
	for _, s := range servers {
		s.stop()
	}
}

// memKB reads the process's peak (VmHWM) and current (VmRSS) resident set size in KiB.
func (s *server) memKB() (peak, cur int64, err error) { return s.proc.Memory() }

// cpuSeconds is the user+system CPU time the server process has used, 0 when it cannot be read.
func (s *server) cpuSeconds() float64 {
	d, err := s.proc.CPUTime()
	if err != nil {
		return 0
	}
	return d.Seconds()
}
