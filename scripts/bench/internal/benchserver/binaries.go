package benchserver

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// DefaultStock is where scripts/setup.sh installs the stock distribution v3.1.2 registry.
const DefaultStock = "/var/cache/registry-kit/bin/registry"

// Binaries are the registry-kit and stock registry binaries a driver compares.
type Binaries struct {
	RK, Stock string
}

// RegisterFlags adds -rk and -stock to fs.
func (b *Binaries) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&b.RK, "rk", "", "registry-kit binary (default: build this checkout)")
	fs.StringVar(&b.Stock, "stock", DefaultStock, "stock distribution v3.1.2 registry binary")
}

// Resolve builds registry-kit from this checkout into dir when RK is empty, then checks that RK, Stock and every
// path in others exist.
func (b *Binaries) Resolve(ctx context.Context, dir string, others ...string) error {
	if b.RK == "" {
		b.RK = filepath.Join(dir, "registry-kit")
		fmt.Fprintln(os.Stderr, "building registry-kit...")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", b.RK, "./cmd/registry-kit")
		build.Dir = repoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building registry-kit: %w", err)
		}
	}
	for _, p := range append([]string{b.RK, b.Stock}, others...) {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w (run scripts/setup.sh)", p, err)
		}
	}
	return nil
}

// repoRoot is the checkout this file is in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", ".."))
}
