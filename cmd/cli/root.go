// Package cli holds registry-kit's command tree: one file per subcommand, each turning flags into typed options and
// calling one library function. Nothing outside this package imports cobra or viper.
package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// IOStreams are the standard streams a command reads and writes, passed in so tests can capture them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// StdStreams returns the process's standard streams.
func StdStreams() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// NewRootCommand builds the registry-kit command tree.
func NewRootCommand(streams IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "registry-kit",
		Short:         "Run a private container registry on Kubernetes and make pods pull from it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(
		newServeCommand(streams),
		newGCCommand(streams),
		newFsckCommand(streams),
		newHtpasswdCommand(streams),
		newGenerateCommand(streams),
		newDeployCommand(streams),
		newUndeployCommand(streams),
		newPullSecretCommand(streams),
		newDoctorCommand(streams),
		newCredentialProviderCommand(streams),
		newImageCommand(streams),
		newNodeProxyCommand(streams),
		newNodesCommand(streams),
		newVersionCommand(streams),
	)
	return root
}
