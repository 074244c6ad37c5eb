//go:build e2e

// Package e2e holds the end-to-end tests: they drive the real registry-kit binary against real registry clients,
// Apache's htpasswd, the OCI conformance suite and a real local Kubernetes cluster (scripts/cluster/up.sh).
// Run with: go test -tags e2e ./scripts/e2e/ (scripts/ci.sh sets up everything they need first).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// builtBinary is the registry-kit binary every test runs; built once in TestMain unless REGISTRY_KIT_BIN names one.
var builtBinary string

// repoRoot is the repository's top directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if bin := os.Getenv("REGISTRY_KIT_BIN"); bin != "" {
		builtBinary = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "registry-kit-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: creating build dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	builtBinary = filepath.Join(dir, "registry-kit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", builtBinary, "./cmd/registry-kit")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building registry-kit:", err)
		return 1
	}
	return m.Run()
}
