package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/internal/image"
	"github.com/registry-kit/registry-kit/manifests"
)

type imageBuildOptions struct {
	platforms []string
	binaries  map[string]string
	source    string
	caBundle  string
	tag       string
	layout    string
	archive   string
	version   string
	revision  string
	sourceURL string
}

func newImageBuildCommand(streams IOStreams) *cobra.Command {
	o := &imageBuildOptions{}
	info := buildVersion()
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the multi-arch registry-kit image as an OCI layout and an OCI archive",
		Long: `Build the registry-kit image for every --platform: each binary is either given (--binary PLATFORM=PATH, a
static linux binary) or built from the source tree in --source with CGO_ENABLED=0 go build. Every timestamp is
SOURCE_DATE_EPOCH (default 0), so the same tree gives the same digest.

The OCI layout (--oci-layout) is what image push reads; the archive (--archive) is the same layout as one tar
file, for ctr images import, podman load, docker load or skopeo's oci-archive: transport.`,
		Example: `  registry-kit image build                          # from the source tree in ., both platforms
  registry-kit image build --platform linux/amd64 --binary linux/amd64=bin/registry-kit
  ctr -n k8s.io images import bin/image/registry-kit.tar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.toOptions()
			if err != nil {
				return err
			}
			return o.run(cmd, streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.platforms, "platform", []string{"linux/amd64", "linux/arm64"}, "platforms of the index")
	f.StringToStringVar(&o.binaries, "binary", nil, "prebuilt static binary for a platform, PLATFORM=PATH (repeatable); the others are built from --source")
	f.StringVar(&o.source, "source", ".", "registry-kit source tree (module root) to go build the binaries from")
	f.StringVar(&o.caBundle, "ca-bundle", image.CABundle, "PEM CA bundle the image carries, for HTTPS peers such as S3 endpoints")
	f.StringVar(&o.tag, "tag", "", "image name recorded in the layout and archive (default: the generator's default image for --version)")
	f.StringVar(&o.layout, "oci-layout", defaultImageLayout, "directory to write the OCI layout to (replaced if it is one)")
	f.StringVar(&o.archive, "archive", defaultImageArchive, `file to write the OCI archive to ("" for none)`)
	f.StringVar(&o.version, "version", info.Version, "version stamped into the binaries and the org.opencontainers.image.version label")
	f.StringVar(&o.revision, "revision", info.Commit, "VCS revision stamped into the binaries and the org.opencontainers.image.revision label")
	f.StringVar(&o.sourceURL, "source-url", image.DefaultSource, "org.opencontainers.image.source label")
	return cmd
}

func (o *imageBuildOptions) toOptions() (image.Options, error) {
	var errs []error
	opts := image.Options{CABundlePath: o.caBundle, Version: o.version, Revision: o.revision, Source: o.sourceURL}
	created, err := sourceDateEpoch()
	if err != nil {
		errs = append(errs, err)
	}
	opts.Created = created
	given := map[string]string{}
	for p, path := range o.binaries {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--binary %s: %w", p, err))
			continue
		}
		given[pl.String()] = path
	}
	listed := map[string]bool{}
	for _, p := range o.platforms {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("--platform %s: %w", p, err))
			continue
		}
		listed[pl.String()] = true
		opts.Binaries = append(opts.Binaries, image.Binary{Platform: *pl, Path: given[pl.String()]})
	}
	for p := range given {
		if !listed[p] {
			errs = append(errs, fmt.Errorf("--binary %s: platform not in --platform %s", p, strings.Join(o.platforms, ",")))
		}
	}
	if o.tag == "" {
		o.tag = manifests.ImageForVersion(o.version)
	}
	if o.layout == "" {
		errs = append(errs, errors.New("--oci-layout: must not be empty"))
	}
	return opts, errors.Join(errs...)
}

// sourceDateEpoch is the reproducible-builds timestamp: SOURCE_DATE_EPOCH seconds, or the zero time (the epoch).
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: must be a number of seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func (o *imageBuildOptions) run(cmd *cobra.Command, streams IOStreams, opts image.Options) error {
	tmp, err := os.MkdirTemp("", "registry-kit-image-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	ldflags := fmt.Sprintf("-s -w -X github.com/registry-kit/registry-kit/cmd/cli.Version=%s -X github.com/registry-kit/registry-kit/cmd/cli.Commit=%s", o.version, o.revision)
	for i, b := range opts.Binaries {
		if b.Path != "" {
			continue
		}
		out := filepath.Join(tmp, strings.ReplaceAll(b.Platform.String(), "/", "_"), "registry-kit")
		fmt.Fprintf(streams.ErrOut, "building the %s binary from %s\n", b.Platform, o.source)
		gb := image.GoBuild{Dir: o.source, Platform: b.Platform, LDFlags: ldflags, Output: out}
		if err := gb.Run(cmd.Context()); err != nil {
			return err
		}
		opts.Binaries[i].Path = out
	}
	idx, err := image.Build(opts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(o.layout)), 0o755); err != nil {
		return fmt.Errorf("creating the layout's parent directory: %w", err)
	}
	if err := image.WriteLayout(o.layout, idx, o.tag); err != nil {
		return err
	}
	if o.archive != "" {
		if err := os.MkdirAll(filepath.Dir(o.archive), 0o755); err != nil {
			return fmt.Errorf("creating the archive's directory: %w", err)
		}
		if err := image.WriteArchive(o.layout, o.archive, opts.Created); err != nil {
			return err
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("computing the index digest: %w", err)
	}
	var platforms []string
	for _, b := range opts.Binaries {
		platforms = append(platforms, b.Platform.String())
	}
	fmt.Fprintf(streams.Out, "built %s@%s (%s)\n  OCI layout:  %s\n", o.tag, d, strings.Join(platforms, ", "), o.layout)
	if o.archive != "" {
		fmt.Fprintf(streams.Out, "  OCI archive: %s\n", o.archive)
	}
	return nil
}
