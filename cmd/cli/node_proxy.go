package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy/nodeproxy"
)

func newNodeProxyCommand(streams IOStreams) *cobra.Command {
	var o nodeproxy.Options
	cmd := &cobra.Command{
		Use:   "node-proxy --listen 127.0.0.1:PORT --upstream HOST:PORT",
		Short: "Forward TCP from the node's loopback to the registry Service (run by deploy --expose node-proxy)",
		Long: `Accept TCP connections on a loopback address and forward each to the upstream address, byte for byte. deploy
--expose node-proxy runs it in a hostNetwork DaemonSet on every node, so the node's container runtime pulls from
localhost:PORT (plain HTTP to loopback needs no runtime configuration) whatever kube-proxy's mode. It refuses to
listen on anything but a loopback address. SIGTERM stops accepting and lets open connections finish (20s at most).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			return nodeproxy.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:29500", "loopback HOST:PORT to accept connections on")
	cmd.Flags().StringVar(&o.Upstream, "upstream", "", "HOST:PORT to forward to (the registry Service's ClusterIP and port)")
	cmd.Flags().DurationVar(&o.DialTimeout, "dial-timeout", 0, "timeout of each upstream connect (default 10s)")
	return cmd
}
