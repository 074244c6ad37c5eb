package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy"
)

// runDoctorNodes is `doctor --nodes`: every node pulls from the deployed registry once, reported per node.
func runDoctorNodes(cmd *cobra.Command, streams IOStreams, kube *kubeFlags, name string) (problems, err error) {
	clients, err := deployClients(kube)
	if err != nil {
		return nil, err
	}
	results, err := deploy.NodeCanary(cmd.Context(), clients, deployNamespace(kube), name, "", streams.ErrOut)
	if err != nil {
		return nil, err
	}
	failed := 0
	for _, r := range results {
		fmt.Fprintln(streams.Out, r)
		if !r.OK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d nodes cannot pull from the registry", errProblemsFound, failed, len(results)), nil
	}
	return nil, nil
}
