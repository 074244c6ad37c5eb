package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GoBuild describes a `go build` of a static registry-kit binary for one platform.
type GoBuild struct {
	// Dir is the module directory go runs in; Package the main package (default ./cmd/registry-kit).
	Dir, Package string
	Platform     v1.Platform
	// LDFlags are passed to -ldflags (version stamping); -trimpath is always set so the output does not depend on
	// where the source lives.
	LDFlags string
	Output  string
}

// Run builds the binary with CGO_ENABLED=0 GOOS/GOARCH set from the platform. It needs the go command on PATH.
func (b GoBuild) Run(ctx context.Context) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the %s binary: the go command is needed (or pass prebuilt binaries): %w", b.Platform, err)
	}
	pkg := b.Package
	if pkg == "" {
		pkg = "./cmd/registry-kit"
	}
	args := []string{"build", "-trimpath", "-ldflags", b.LDFlags, "-o", b.Output, pkg}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+b.Platform.OS, "GOARCH="+b.Platform.Architecture)
	if b.Platform.Architecture == "arm" && strings.HasPrefix(b.Platform.Variant, "v") {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(b.Platform.Variant, "v"))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w: %s", b.Platform, err, strings.TrimSpace(out.String()))
	}
	return nil
}
