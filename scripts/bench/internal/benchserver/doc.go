// Package benchserver owns what the benchmark drivers under scripts/bench share about the servers they measure:
// starting a server process in its own process group with its output in a log file and waiting until it answers
// (Start, StartIn, Process.WaitReady, Process.WaitRegistry), stopping it (SIGTERM to the group, SIGKILL after 10s),
// its CPU time and resident set size from /proc, the htpasswd file with one bcrypt user and a random password
// (WriteHtpasswd), the stock distribution v3.1.2 configuration and its start with OTEL_TRACES_EXPORTER=none
// (StockConfig, StartStock), the `registry-kit serve` arguments (ServeArgs), the -rk/-stock flags with building
// registry-kit from this checkout (Binaries), a driver's main (Main: signal context, work directory, error line)
// and FreeAddr. Every address it hands out or probes is on 127.0.0.1. Which configuration each driver compares
// against stays the driver's choice.
package benchserver
