package deploy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// ErrNotReady is returned (wrapped, with the reasons) when the registry does not serve before the timeout.
var ErrNotReady = errors.New("registry-kit is not ready")

// waitOptions tune waitReady.
type waitOptions struct {
	deadline time.Time
	timeout  time.Duration // for the message: the whole deploy's timeout
	interval time.Duration // between checks
	report   time.Duration // between progress lines
	probe    []string      // base URLs (http://host:port) to try /v2/ on; the first that answers is used
	progress io.Writer
	client   *http.Client
}

// notReady is one thing deploy still waits for.
type notReady struct {
	what string // "deployment.apps/registry"
	why  string // "Deployment does not have minimum availability"
}

func (n notReady) String() string { return n.what + ": " + n.why }

// waitReady polls until every applied object is Current by kstatus and one probe URL answers /v2/ with 200 or 401.
// It returns the probe URL that answered, or on timeout an ErrNotReady naming what is not ready and why.
func waitReady(ctx context.Context, c Clients, applied []Applied, opts waitOptions) (string, error) {
	if opts.client == nil {
		// One client for the whole wait: its connections are reused across probes and closed when it ends.
		opts.client = newProbeClient()
		defer opts.client.CloseIdleConnections()
	}
	start := time.Now()
	deadline := opts.deadline
	var lastReport time.Time
	var lastLine string
	for {
		pending, served, err := checkOnce(ctx, c, applied, opts)
		if err != nil {
			return "", err
		}
		if len(pending) == 0 {
			return served, nil
		}
		if line := progressLine(pending); time.Since(lastReport) >= opts.report || (line != lastLine && time.Since(lastReport) >= opts.interval) {
			fmt.Fprintf(opts.progress, "waiting (%s): %s\n", time.Since(start).Round(time.Second), line)
			lastReport, lastLine = time.Now(), line
		}
		if time.Now().After(deadline) {
			return "", timeoutError(ctx, c, applied, pending, opts.timeout)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for registry-kit: %w", ctx.Err())
		case <-time.After(opts.interval):
		}
	}
}

func progressLine(pending []notReady) string {
	parts := make([]string, len(pending))
	for i, p := range pending {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// checkOnce computes the kstatus of every applied object and probes the registry.
func checkOnce(ctx context.Context, c Clients, applied []Applied, opts waitOptions) ([]notReady, string, error) {
	var pending []notReady
	for _, a := range applied {
		ri, err := resourceFor(c, a.Object)
		if err != nil {
			return nil, "", err
		}
		live, err := ri.Get(ctx, a.Object.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			pending = append(pending, notReady{a.Ref(), "not found (deleted while waiting?)"})
			continue
		}
		if err != nil {
			return nil, "", explain(err, "get", describe(a.Object))
		}
		res, err := status.Compute(live)
		if err != nil {
			return nil, "", fmt.Errorf("computing the status of %s: %w", describe(live), err)
		}
		if res.Status != status.CurrentStatus {
			pending = append(pending, notReady{a.Ref(), statusReason(live, res)})
		}
	}
	if len(opts.probe) == 0 {
		return pending, "", nil
	}
	var probeErrs []string
	for _, base := range opts.probe {
		err := probe(ctx, opts.client, base)
		if err == nil {
			return pending, base, nil
		}
		probeErrs = append(probeErrs, err.Error())
	}
	pending = append(pending, notReady{"registry endpoint", strings.Join(probeErrs, "; ")})
	return pending, "", nil
}

func statusReason(u *unstructured.Unstructured, res *status.Result) string {
	why := string(res.Status)
	if res.Message != "" {
		why += ": " + res.Message
	}
	if u.GetKind() == "PersistentVolumeClaim" {
		if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != "" {
			why = "phase " + phase
		}
	}
	return why
}

// newProbeClient is the HTTP client of a deploy's readiness probes. The caller closes its idle connections when
// done.
func newProbeClient() *http.Client {
	return &http.Client{Timeout: probeTimeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		// The probe only asks "is something answering the registry API here"; TLS trust is the node's concern.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // liveness probe only, no credentials sent
	}}
}

const probeTimeout = 3 * time.Second

// probe checks that the registry answers GET /v2/ with 200 (no auth) or 401 (auth required): either way it serves.
func probe(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("probing %s: %w", base, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s/v2/: %w", base, unwrapURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
		return nil
	}
	return fmt.Errorf("GET %s/v2/: status %d, want 200 or 401", base, resp.StatusCode)
}

// unwrapURL drops url.Error's repetition of method and URL.
func unwrapURL(err error) error {
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "Get ") {
		return u
	}
	return err
}

// timeoutError builds the final error: every pending item plus a diagnosis from pod status, claims and events.
func timeoutError(ctx context.Context, c Clients, applied []Applied, pending []notReady, timeout time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "not ready after %s:", timeout)
	for _, p := range pending {
		fmt.Fprintf(&b, "\n  - %s", p)
	}
	// Diagnosis uses a fresh context: the caller's may be the one that just expired.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	hints := diagnose(dctx, c, applied)
	for _, h := range hints {
		fmt.Fprintf(&b, "\n  * %s", h)
	}
	return fmt.Errorf("%w: %s", ErrNotReady, b.String())
}

func containsKind(applied []Applied, kind string) bool {
	return slices.ContainsFunc(applied, func(a Applied) bool { return a.Object.GetKind() == kind })
}
