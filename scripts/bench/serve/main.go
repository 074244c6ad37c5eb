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
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
)

type config struct {
	benchserver.Binaries
	sizeMB         int
	reps, pushReps int
	streams        int
	streamReps     int
}

func main() {
	if benchserver.ServeFilesIfAsked() { // re-executed as the FileServer process
		return
	}
	var cfg config
	cfg.RegisterFlags(flag.CommandLine)
	flag.IntVar(&cfg.sizeMB, "size-mb", 1024, "blob size in MiB")
	flag.IntVar(&cfg.reps, "reps", 5, "single-stream pull repetitions per server (the median is reported)")
	flag.IntVar(&cfg.pushReps, "push-reps", 2, "push repetitions per registry (the median is reported)")
	flag.IntVar(&cfg.streams, "streams", 4, "concurrent streams for the parallel pull (0 skips it)")
	flag.IntVar(&cfg.streamReps, "stream-reps", 3, "parallel pull repetitions per server")
	flag.Parse()
	os.Exit(benchserver.Main("serve bench", "rk-bench-serve-", func(ctx context.Context, work string) error { return run(ctx, cfg, work) }))
}

func run(ctx context.Context, cfg config, work string) error {
	start := time.Now()
	if err := cfg.Resolve(ctx, work); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "writing a %d MiB random blob...\n", cfg.sizeMB)
	b, err := writeBlob(filepath.Join(work, "files"), int64(cfg.sizeMB)<<20)
	if err != nil {
		return err
	}
	htpasswdFile, user, pass, err := benchserver.WriteHtpasswd(work, htpasswd.DefaultCost)
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
		if err := s.start(ctx, cfg, htpasswdFile, filepath.Dir(b.path)); err != nil {
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
