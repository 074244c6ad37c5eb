// Package nodeproxy is the per-node proxy of `registry-kit deploy --expose node-proxy`: a plain TCP forwarder bound
// to the node's 127.0.0.1, run by a hostNetwork DaemonSet of registry-kit itself, that forwards to the registry's
// Service. The node's container runtime pulls from localhost:<port> (plain HTTP to loopback needs no
// configuration), whatever kube-proxy's mode, and no port is exposed outside the node.
package nodeproxy
