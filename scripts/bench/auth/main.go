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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/scripts/bench/internal/benchserver"
)

type config struct {
	benchserver.Binaries
	crane           string
	duration        time.Duration
	blobMB, chunkMB int
	layerMB         int
}

func main() {
	if benchserver.ServeFilesIfAsked() {
		return
	}
	var cfg config
	cfg.RegisterFlags(flag.CommandLine)
	flag.StringVar(&cfg.crane, "crane", "", "crane binary (default: PATH, then /var/cache/registry-kit/bin/crane)")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each requests-per-second measurement")
	flag.IntVar(&cfg.blobMB, "blob-mb", 64, "size of the chunked-push blob in MiB")
	flag.IntVar(&cfg.chunkMB, "chunk-mb", 16, "PATCH chunk size in MiB")
	flag.IntVar(&cfg.layerMB, "layer-mb", 64, "size of each of the 4 layers crane pushes, in MiB")
	flag.Parse()
	os.Exit(benchserver.Main("auth bench", "registry-kit-auth-bench-", func(ctx context.Context, work string) error { return run(ctx, cfg, work) }))
}

func run(ctx context.Context, cfg config, work string) error {
	if cfg.crane == "" {
		if p, err := exec.LookPath("crane"); err == nil {
			cfg.crane = p
		} else {
			cfg.crane = "/var/cache/registry-kit/bin/crane"
		}
	}
	if err := cfg.Resolve(ctx, work, cfg.crane); err != nil {
		return err
	}
	htpasswdFile, user, pass, err := benchserver.WriteHtpasswd(work, htpasswd.DefaultCost)
	if err != nil {
		return err
	}
	servers := []*server{
		{name: "rk-auth", user: user, pass: pass},
		{name: "rk-noauth"},
		{name: "stock-auth", user: user, pass: pass},
		{name: "stock-noauth"},
		{name: fileServerName},
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
		var err error
		if s.name == fileServerName {
			err = s.seedFiles(ctx, servers[1])
		} else {
			err = s.seed(ctx)
		}
		if err != nil {
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
