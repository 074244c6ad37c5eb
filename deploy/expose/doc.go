// Package expose decides how the nodes' container runtime reaches a deployed registry: through a node port on the
// node's own loopback (nodeport-localhost), through a per-node proxy bound to 127.0.0.1 (node-proxy), or over TLS
// on an address every node resolves (tls). It detects kube-proxy's mode from the cluster, from the kube-proxy
// ConfigMap or kube-proxy's own /configz and /proxyMode endpoints through the API server's node proxy, and says
// why when it cannot. Choose is a pure function of what was detected and what the user asked for.
package expose
