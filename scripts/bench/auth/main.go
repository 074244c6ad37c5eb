// Command auth benchmarks authentication cost in registry-kit serve against stock distribution v3.1.2 with the same
// bcrypt (cost 10) htpasswd file: authenticated manifest HEAD/GET requests per second at concurrency 1 and 16,
// chunked blob push MB/s with and without auth, and the wall time of a 4-layer `crane push`. It prints one table
// with ratios. Every server binds 127.0.0.1 and is stopped at the end.
//
//	go run ./scripts/bench/auth [-rk BIN] [-stock BIN] [-crane BIN] [-duration 3s]
//
// Without -rk it builds registry-kit from this checkout. The stock registry and crane are installed by
// scripts/setup.sh into /var/cache/registry-kit/bin.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

type config struct {
	rk, stock, crane string
	duration         time.Duration
	blobMB, chunkMB  int
	layerMB          int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.rk, "rk", "", "registry-kit binary (default: build this checkout)")
	flag.StringVar(&cfg.stock, "stock", "/var/cache/registry-kit/bin/registry", "stock distribution v3.1.2 registry binary")
	flag.StringVar(&cfg.crane, "crane", "", "crane binary (default: PATH, then /var/cache/registry-kit/bin/crane)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each requests-per-second measurement")
	flag.IntVar(&cfg.blobMB, "blob-mb", 64, "size of the chunked-push blob in MiB")
	flag.IntVar(&cfg.chunkMB, "chunk-mb", 4, "PATCH chunk size in MiB")
	flag.IntVar(&cfg.layerMB, "layer-mb", 4, "size of each of the 4 layers crane pushes, in MiB")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "auth bench:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	work, err := os.MkdirTemp("", "registry-kit-auth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if cfg.rk == "" {
		cfg.rk = filepath.Join(work, "registry-kit")
		fmt.Fprintln(os.Stderr, "building registry-kit...")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", cfg.rk, "./cmd/registry-kit")
		build.Dir = repoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building registry-kit: %w", err)
		}
	}
	if cfg.crane == "" {
		if p, err := exec.LookPath("crane"); err == nil {
			cfg.crane = p
		} else {
			cfg.crane = "/var/cache/registry-kit/bin/crane"
		}
	}
	for _, p := range []string{cfg.rk, cfg.stock, cfg.crane} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w (run scripts/setup.sh)", p, err)
		}
	}
	htpasswdFile, user, pass, err := writeHtpasswd(work)
	if err != nil {
		return err
	}
	servers := []*server{
		{name: "rk-auth", user: user, pass: pass},
		{name: "rk-noauth"},
		{name: "stock-auth", user: user, pass: pass},
		{name: "stock-noauth"},
	}
	for _, s := range servers {
		s.dir = filepath.Join(work, s.name)
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		if err := s.start(ctx, cfg, htpasswdFile); err != nil {
			stopAll(servers)
			return fmt.Errorf("starting %s: %w", s.name, err)
		}
	}
	defer stopAll(servers)
	for _, s := range servers {
		if err := s.seed(ctx); err != nil {
			return fmt.Errorf("seeding %s: %w", s.name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "GOMAXPROCS=%d, bcrypt cost 10, %v per measurement\n", runtime.GOMAXPROCS(0), cfg.duration)
	res, err := measure(ctx, cfg, servers, work)
	if err != nil {
		return err
	}
	res.print(os.Stdout, cfg)
	return nil
}

// freeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}
