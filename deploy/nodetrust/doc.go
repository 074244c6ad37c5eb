// Package nodetrust makes every node's container runtime trust a registry: it writes containerd's
// certs.d/<host:port>/hosts.toml (and ca.crt) under the node's configured registry config_path, checks that
// containerd actually reads that directory, and removes only what it wrote. The agent runs on each node in a
// DaemonSet that deploy (--configure-nodes) or `registry-kit nodes trust` applies, so nodes that join later are
// configured too. CRI-O is not supported: its registries.conf.d needs a runtime reload this agent does not do.
package nodetrust
