package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/internal/image"
)

type imagePushOptions struct {
	layout   string
	insecure bool
}

func newImagePushCommand(streams IOStreams) *cobra.Command {
	o := &imagePushOptions{}
	cmd := &cobra.Command{
		Use:   "push REF",
		Short: "Push the multi-arch image that image build wrote to a registry",
		Long: `Push the image index in --oci-layout (written by registry-kit image build or make image), with every image and
layer it references, to REF. Credentials come from the docker config (DOCKER_CONFIG or ~/.docker/config.json,
credential helpers included: docker login, crane auth login or registry-kit's own admin password all work).
Plain HTTP is used for localhost, 127.0.0.0/8 and private addresses, and for any registry with --insecure.

The bootstrap for a cluster that can pull from nowhere else: serve a registry-kit locally, push the image into it,
and deploy with --image pointing there.`,
		Example: `  registry-kit image push ghcr.io/example/registry-kit:v1.2.3
  docker login 127.0.0.1:5000 -u admin --password-stdin < ./data/admin-password
  registry-kit image push 127.0.0.1:5000/registry-kit:dev`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := image.ReadLayout(o.layout)
			if err != nil {
				return err
			}
			d, err := image.Push(cmd.Context(), idx, args[0], image.PushOptions{Insecure: o.insecure})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(streams.Out, "pushed %s@%s\n", args[0], d)
			return err
		},
	}
	cmd.Flags().StringVar(&o.layout, "oci-layout", defaultImageLayout, "OCI layout written by registry-kit image build")
	cmd.Flags().BoolVar(&o.insecure, "insecure", false, "allow plain HTTP to any registry")
	return cmd
}
