package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Target says which pods to diagnose: one pod, the pods of a Deployment, or (both empty) every pod of the namespace
// that is failing to pull an image.
type Target struct {
	Namespace  string
	Pod        string
	Deployment string
}

// ErrBadTarget is returned for a target argument doctor does not understand.
var ErrBadTarget = errors.New("bad target")

// ParseTarget reads a kubectl-style target: "", "POD", "pod/POD", "deployment/NAME" (also "deploy/NAME").
func ParseTarget(arg, namespace string) (Target, error) {
	t := Target{Namespace: namespace}
	if namespace == "" {
		return t, fmt.Errorf("%w: namespace is empty", ErrBadTarget)
	}
	kind, nm, found := strings.Cut(arg, "/")
	switch {
	case arg == "":
	case !found:
		t.Pod = arg
	case nm == "":
		return t, fmt.Errorf("%w: %q has no name after %q", ErrBadTarget, arg, kind+"/")
	case kind == "pod" || kind == "pods" || kind == "po":
		t.Pod = nm
	case kind == "deployment" || kind == "deployments" || kind == "deploy":
		t.Deployment = nm
	default:
		return t, fmt.Errorf("%w: %q: kind %q is not pod or deployment", ErrBadTarget, arg, kind)
	}
	return t, nil
}

// Options tune Run. The zero value is usable.
type Options struct {
	// InsecureRegistries are hosts (host or host:port) that may be reached over plain HTTP, as containerd's
	// hosts.toml would allow; loopback hosts always may.
	InsecureRegistries []string
	// RootCAs verifies registry certificates; nil means the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds each registry request (default 10s).
	Timeout time.Duration
	// Offline skips every live registry probe: only the cluster's view (objects and events) is used.
	Offline bool
	// ServiceAccountAudience, when set, says pods pull with their own ServiceAccount token through the kubelet's
	// credential provider (the registry's --service-account-audience): a pod without a pull secret is checked on
	// that path (serviceaccount.go).
	ServiceAccountAudience string
	// Transport replaces the base HTTP transport for registry probes (tests).
	Transport http.RoundTripper
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Run diagnoses target and returns a report; an error means doctor could not look (e.g. the pod does not exist), not
// that a problem was found: see Report.Problems for that.
func Run(ctx context.Context, cs kubernetes.Interface, target Target, opts Options) (*Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pods, err := targetPods(ctx, cs, target)
	if err != nil {
		return nil, err
	}
	d := &diagnoser{cs: cs, opts: opts, probe: newProber(opts), report: &Report{}, elsewhere: map[string][]string{}}
	for i := range pods {
		pr, err := d.pod(ctx, &pods[i])
		if err != nil {
			return nil, fmt.Errorf("diagnosing pod %s/%s: %w", pods[i].Namespace, pods[i].Name, err)
		}
		d.report.Pods = append(d.report.Pods, pr)
	}
	return d.report, nil
}

func targetPods(ctx context.Context, cs kubernetes.Interface, t Target) ([]corev1.Pod, error) {
	pods := cs.CoreV1().Pods(t.Namespace)
	switch {
	case t.Pod != "":
		p, err := pods.Get(ctx, t.Pod, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("getting pod %q in namespace %q: %w", t.Pod, t.Namespace, err)
		}
		return []corev1.Pod{*p}, nil
	case t.Deployment != "":
		dep, err := cs.AppsV1().Deployments(t.Namespace).Get(ctx, t.Deployment, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("getting deployment %q in namespace %q: %w", t.Deployment, t.Namespace, err)
		}
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("reading selector of deployment %q: %w", t.Deployment, err)
		}
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("listing pods of deployment %q in namespace %q: %w", t.Deployment, t.Namespace, err)
		}
		if len(list.Items) == 0 {
			return nil, fmt.Errorf("deployment %q in namespace %q has no pods", t.Deployment, t.Namespace)
		}
		sortPods(list.Items)
		return list.Items, nil
	default:
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing pods in namespace %q: %w", t.Namespace, err)
		}
		var failing []corev1.Pod
		for _, p := range list.Items {
			if podFailingPull(&p) {
				failing = append(failing, p)
			}
		}
		sortPods(failing)
		return failing, nil
	}
}

func sortPods(ps []corev1.Pod) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
}

// pullFailureReasons are the container waiting reasons that mean the kubelet cannot get the image.
var pullFailureReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"RegistryUnavailable": true, "SignatureValidationFailed": true,
}

func podFailingPull(p *corev1.Pod) bool {
	for _, st := range allStatuses(p) {
		if st.State.Waiting != nil && pullFailureReasons[st.State.Waiting.Reason] {
			return true
		}
	}
	return false
}

func allStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	out := append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...)
	return append(out, p.Status.ContainerStatuses...)
}
