// Command testapp is the small application image the e2e suite pulls through private registries: an HTTP server
// that answers every path with a fixed greeting plus the pod's hostname, and /healthz with "ok". It listens on
// $PORT (default 8080) and logs one line when it is ready, so tests can check both Running pods and Service traffic.
//
// `testapp fetch [-insecure] URL` instead makes one GET request from inside a pod and prints the status line and
// the start of the body, exiting 0 on any HTTP answer: tests use it to prove pods reach the API server
// (https://10.0.0.1) and host services (http://10.200.0.1:PORT).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Greeting is the first line of every non-health response; tests match on it.
const Greeting = "registry-kit test app"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fetch" {
		if err := fetch(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "testapp fetch: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s\nhostname: %s\n", Greeting, host)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("testapp listening", "addr", srv.Addr, "hostname", host)
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

func fetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	insecure := fs.Bool("insecure", false, "do not verify the server's TLS certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: testapp fetch [-insecure] URL")
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}}, //nolint:gosec // test tool
	}
	resp, err := client.Get(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("getting %s: %w", fs.Arg(0), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fmt.Printf("%s %s\n%s\n", resp.Proto, resp.Status, body)
	return nil
}
