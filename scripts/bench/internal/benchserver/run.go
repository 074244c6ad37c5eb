package benchserver

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs fn with a context that SIGINT and SIGTERM cancel and a fresh temporary work directory named after
// workPrefix, removed afterwards. It prints fn's error on stderr as "name: error" and returns the exit code for
// the driver's main to pass to os.Exit.
func Main(name, workPrefix string, fn func(ctx context.Context, work string) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := withWorkDir(workPrefix, func(work string) error { return fn(ctx, work) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func withWorkDir(prefix string, fn func(work string) error) error {
	work, err := os.MkdirTemp("", prefix)
	if err != nil {
		return fmt.Errorf("making work directory: %w", err)
	}
	defer os.RemoveAll(work)
	return fn(work)
}
