package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/deploy/nodetrust"
)

func newNodesCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "Make every node's containerd trust the deployed registry (certs.d/hosts.toml + CA)",
	}
	cmd.AddCommand(newNodesTrustCommand(streams, false), newNodesTrustCommand(streams, true), newNodesTrustAgentCommand(streams))
	return cmd
}

// nodeTrustFlags are the node paths deploy --configure-nodes and nodes trust share.
type nodeTrustFlags struct {
	containerdConfig, certsDir string
}

func (f *nodeTrustFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.containerdConfig, "containerd-config", nodetrust.DefaultContainerdConfig, "containerd's config.toml on the nodes (checked for the registry config_path); "+nodetrust.NodeNameVar+" in it is each node's name")
	cmd.Flags().StringVar(&f.certsDir, "containerd-certs-dir", nodetrust.DefaultCertsDir, "containerd's registry config_path on the nodes, where certs.d/<host:port>/hosts.toml goes; "+nodetrust.NodeNameVar+" in it is each node's name")
}

func newNodesTrustCommand(streams IOStreams, remove bool) *cobra.Command {
	kube := newKubeFlags()
	var paths nodeTrustFlags
	var name, pullAddress string
	use, short := "trust", "Run the node-trust DaemonSet for the deployed registry and wait until every node has it"
	if remove {
		use, short = "untrust", "Remove the certs.d entries the node-trust DaemonSet wrote on every node, then the DaemonSet"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: `trust applies a DaemonSet (namespace ` + deploy.NodesNamespace + `) whose pod on every node writes
certs.d/<host:port>/hosts.toml (and ca.crt, for a registry deploy gave a generated CA) under containerd's registry
config_path, after checking containerd's config.toml sets it (it says what to change when not). Nodes that join
later get it too. The address is the deployed registry's pull prefix (--pull-address overrides it). untrust rolls
the DaemonSet to remove exactly those files (entries registry-kit did not write stay) and deletes it; undeploy does
the same. Only containerd is supported.`,
		Example: `  registry-kit nodes trust -n docker-registry
  registry-kit nodes trust --containerd-config /etc/containerd/config.toml --containerd-certs-dir /etc/containerd/certs.d
  registry-kit nodes untrust -n docker-registry`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clients, err := deployClients(kube)
			if err != nil {
				return err
			}
			o := deploy.TrustOptions{Namespace: deployNamespace(kube), Name: name, PullAddress: pullAddress,
				ContainerdConfig: paths.containerdConfig, CertsDir: paths.certsDir, Progress: streams.Out}
			if remove {
				return deploy.UntrustNodes(cmd.Context(), clients, o)
			}
			return deploy.TrustNodes(cmd.Context(), clients, o)
		},
	}
	kube.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&name, "name", "registry", "name of the deployed registry")
	if !remove {
		cmd.Flags().StringVar(&pullAddress, "pull-address", "", "HOST:PORT the nodes pull from (default: the deployed registry's)")
		paths.addFlags(cmd)
	}
	return cmd
}

// terminationLog is the kubelet's default terminationMessagePath.
const terminationLog = "/dev/termination-log"

func newNodesTrustAgentCommand(streams IOStreams) *cobra.Command {
	var o nodetrust.AgentOptions
	var hold bool
	cmd := &cobra.Command{
		Use:    "trust-agent",
		Short:  "Write (or remove) this node's certs.d entry for a registry (run by the node-trust DaemonSet)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hold {
				<-cmd.Context().Done()
				return nil
			}
			if o.Registry == "" || o.Owner == "" || o.CertsDir == "" {
				return errors.New("--registry, --owner and --certs-dir are required")
			}
			if o.HostCertsDir == "" {
				o.HostCertsDir = o.CertsDir
			}
			if o.HostContainerdConfig == "" {
				o.HostContainerdConfig = o.ContainerdConfig
			}
			msg, err := nodetrust.RunAgent(o)
			if err != nil {
				return err
			}
			// In a pod, the termination message is how deploy reads what happened on each node (on failure the
			// kubelet takes the log's tail).
			if _, serr := os.Stat(terminationLog); serr == nil {
				_ = os.WriteFile(terminationLog, []byte(msg), 0o644)
			}
			_, err = fmt.Fprintln(streams.Out, msg)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Registry, "registry", "", "HOST:PORT of the registry as the node pulls from it")
	f.BoolVar(&o.TLS, "tls", false, "the registry serves HTTPS")
	f.StringVar(&o.CAFile, "ca-file", "", "PEM CA certificate to write as ca.crt")
	f.StringVar(&o.Owner, "owner", "", "namespace/name of the registry (recorded next to what is written)")
	f.StringVar(&o.CertsDir, "certs-dir", "", "the node's certs.d directory as this process sees it")
	f.StringVar(&o.HostCertsDir, "host-certs-dir", "", "the same directory as containerd sees it (default --certs-dir)")
	f.StringVar(&o.ContainerdConfig, "containerd-config", nodetrust.DefaultContainerdConfig, "containerd's config.toml as this process sees it")
	f.StringVar(&o.HostContainerdConfig, "host-containerd-config", "", "the same file as the node has it (default --containerd-config)")
	f.StringVar(&o.CertsMount, "certs-mount", "", "POD_DIR=HOST_DIR: the host directory mounted for --certs-dir, to follow symlinks back to the node's path")
	f.StringVar(&o.ConfigMount, "config-mount", "", "POD_DIR=HOST_DIR: the host directory mounted for --containerd-config")
	f.BoolVar(&o.Remove, "remove", false, "remove what an earlier run wrote instead")
	f.BoolVar(&hold, "hold", false, "do nothing until SIGTERM (keeps the DaemonSet's pod running)")
	return cmd
}
