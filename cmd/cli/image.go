package cli

import "github.com/spf13/cobra"

// Where `make image` and `registry-kit image build` put the image, and where `image push` reads it from.
const (
	defaultImageLayout  = "bin/image/oci"
	defaultImageArchive = "bin/image/registry-kit.tar"
)

func newImageCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build registry-kit's own multi-arch container image without a Docker engine, and push it",
		Long: `Build the registry-kit image in process (no Docker engine, no base image): a static binary per platform,
the CA bundle, a non-root user (65532) and OCI labels, reproducibly (the same tree gives the same digest),
written as an OCI layout and an OCI archive; then push the multi-arch index to any registry.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newImageBuildCommand(streams), newImagePushCommand(streams))
	return cmd
}
