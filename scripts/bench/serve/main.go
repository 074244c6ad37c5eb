// Command serve benchmarks the blob data path of registry-kit serve side by side, in one run, with stock
// distribution v3.1.2 (same htpasswd file, equivalent filesystem configuration) and a plain Go http.FileServer
// serving the same file: blob pull MiB/s of a 1 GiB blob (one stream, and several concurrent streams), monolithic
// push MiB/s (POST + one PUT of the whole blob), and each server's peak RSS (VmHWM) over the run. It prints one
// table and the ratios against the targets (pull >= 0.8x FileServer, push within 10% of stock, peak RSS <= stock).
// Every server binds 127.0.0.1 and is stopped at the end.
//
//	go run ./scripts/bench/serve [-rk BIN] [-stock BIN] [-size-mb 1024] [-reps 5] [-push-reps 2] [-streams 4]
//
// Without -rk it builds registry-kit from this checkout. The stock registry is installed by scripts/setup.sh into
// /var/cache/registry-kit/bin. Each repetition measures every server back to back (in a rotating order); the table
// shows medians and each ratio is the median of the per-repetition ratios, so a busy machine skews every server
// alike. The stock registry runs with OTEL_TRACES_EXPORTER=none, as TESTING.md says to.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

type config struct {
	rk, stock      string
	sizeMB         int
	reps, pushReps int
	streams        int
	streamReps     int
}

func main() {
	// Re-executed as the FileServer process: `serve -fileserver ADDR DIR`.
	if len(os.Args) == 4 && os.Args[1] == "-fileserver" {
		if err := fileServer(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "fileserver:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	flag.StringVar(&cfg.rk, "rk", "", "registry-kit binary (default: build this checkout)")
	flag.StringVar(&cfg.stock, "stock", "/var/cache/registry-kit/bin/registry", "stock distribution v3.1.2 registry binary")
	flag.IntVar(&cfg.sizeMB, "size-mb", 1024, "blob size in MiB")
	flag.IntVar(&cfg.reps, "reps", 5, "single-stream pull repetitions per server (the median is reported)")
	flag.IntVar(&cfg.pushReps, "push-reps", 2, "push repetitions per registry (the median is reported)")
	flag.IntVar(&cfg.streams, "streams", 4, "concurrent streams for the parallel pull (0 skips it)")
	flag.IntVar(&cfg.streamReps, "stream-reps", 3, "parallel pull repetitions per server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "serve bench:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	start := time.Now()
	work, err := os.MkdirTemp("", "rk-bench-serve-")
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
	for _, p := range []string{cfg.rk, cfg.stock} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w (run scripts/setup.sh)", p, err)
		}
	}

	fmt.Fprintf(os.Stderr, "writing a %d MiB random blob...\n", cfg.sizeMB)
	b, err := writeBlob(filepath.Join(work, "files"), int64(cfg.sizeMB)<<20)
	if err != nil {
		return err
	}
	htpasswdFile, user, pass, err := writeHtpasswd(work)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	servers := []*server{
		{name: "http.FileServer", kind: kindFileServer},
		{name: "registry-kit (auth)", kind: kindRK, user: user, pass: pass},
		{name: "registry-kit (no-auth)", kind: kindRK},
		{name: "distribution v3.1.2 (auth)", kind: kindStock, user: user, pass: pass},
	}
	defer stopAll(servers)
	for i, s := range servers {
		s.dir = filepath.Join(work, fmt.Sprintf("server%d", i))
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		if err := s.start(ctx, cfg, self, htpasswdFile, filepath.Dir(b.path)); err != nil {
			return fmt.Errorf("starting %s: %w", s.name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "GOMAXPROCS=%d, %d CPUs; blob %d MiB; %d pull and %d push repetitions, interleaved\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), cfg.sizeMB, cfg.reps, cfg.pushReps)
	res, err := measure(ctx, cfg, servers, b)
	if err != nil {
		return err
	}
	res.print(os.Stdout, cfg)
	fmt.Fprintf(os.Stdout, "\ntotal run time %s\n", time.Since(start).Round(time.Second))
	return nil
}

// fileServer serves dir with http.FileServer on addr until it is signalled.
func fileServer(addr, dir string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(l, http.FileServer(http.Dir(dir)))
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
