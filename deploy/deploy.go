package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-kit/registry-kit/deploy/expose"
	"github.com/registry-kit/registry-kit/manifests"
)

// Defaults for Options' zero values.
const (
	DefaultTimeout  = 5 * time.Minute
	defaultInterval = 2 * time.Second
	defaultReport   = 5 * time.Second
)

// Options say what Deploy applies and how long it waits.
type Options struct {
	// Source gives the objects, applied in dependency order.
	Source Source
	// Namespace is where namespaced objects that name none go (kustomize overlays without a namespace).
	Namespace string
	// ForceConflicts takes over fields another field manager owns (kubectl apply --server-side --force-conflicts).
	ForceConflicts bool
	DryRun         DryRun
	// NoWait returns right after applying.
	NoWait bool
	// Timeout bounds the wait; default DefaultTimeout.
	Timeout time.Duration
	// Interval between readiness checks; default 2s. ReportEvery is the longest silence between progress lines;
	// default 5s.
	Interval, ReportEvery time.Duration
	// Address is the host:port the registry is reachable at from this machine; default: the Service's node port
	// on 127.0.0.1, then on each node's InternalIP.
	Address string
	// PullAddress is the host:port pods put in front of image names; default localhost:<node port> (see
	// NodeLocalHost). Set it when the nodes reach the registry another way (a node IP trusted in containerd's
	// certs.d, an ingress with TLS).
	PullAddress string
	// PullSync, when set, also deploys the pull-secret controller (see PullSync).
	PullSync *PullSync
	// ServiceAccountAuth, when set, makes the registry accept the pods' ServiceAccount tokens (serviceaccount.go).
	ServiceAccountAuth *ServiceAccountAuth
	// PullSecretNamespaces get a pull Secret (PullSecretName, default DefaultPullSecretName) holding the pull-only
	// user's credentials for the pull prefix, once the registry serves.
	PullSecretNamespaces []string
	PullSecretName       string
	// Nodes say how the nodes reach (--expose) and trust (--configure-nodes) the registry.
	Nodes NodeOptions
	// Canary makes every node pull from the registry once after deploy and reports per node (see Canary).
	Canary bool
	// Progress receives one line per applied object and the progress lines of the wait; nil discards them.
	Progress io.Writer
	Logger   *slog.Logger
}

// Result is what Deploy did and where the registry is.
type Result struct {
	Applied []Applied
	// GeneratedUser is the admin user this deploy created with a random password, or nil when the existing
	// htpasswd Secret was kept. Its password is for the user's eyes only: never log it.
	GeneratedUser *manifests.User
	// Puller is the pull-only user (for pull secrets and nodes), or nil when the registry has none.
	Puller *Puller
	// PullSecrets are the pull Secrets created (namespace/name), with Options.PullSecretNamespaces.
	PullSecrets []string
	// Namespace and Service locate the registry's Service; ServiceType and NodePort describe it (NodePort 0 for
	// ClusterIP).
	Namespace, Service string
	ServiceType        string
	NodePort           int64
	// Endpoint is the base URL (http://host:port) that answered /v2/ from this machine; empty with NoWait, a dry
	// run or a ClusterIP Service.
	Endpoint string
	// PushAddress is the host:port to push to from this machine; PullPrefix is the host:port pods put in front of
	// image names (the node's container runtime pulls from it). Empty for a ClusterIP Service.
	PushAddress, PullPrefix string
	// Warnings are things the user should know: a namespace left as it was, credentials that would cross a
	// network in plain HTTP, addresses that may not work.
	Warnings []string
	// TLS is true when the registry serves HTTPS itself.
	TLS bool
	// Exposure is how the nodes pull (empty for a --pull-address given by the user); ExposureReason says why.
	Exposure       expose.Mode
	ExposureReason string
	// NodeTrust has one line per node the trust DaemonSet configured (--configure-nodes).
	NodeTrust []string
	// Canary is each node's pull attempt (Options.Canary).
	Canary  []CanaryResult
	Elapsed time.Duration
}

// Deploy server-side applies opts.Objects and, unless told not to, waits until every object is current and the
// registry answers /v2/ through a node-reachable address. On timeout the error wraps ErrNotReady and explains what
// is not ready and why.
func Deploy(ctx context.Context, c Clients, opts Options) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if opts.DryRun == "" {
		opts.DryRun = DryRunNone
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = defaultReport
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	log := discardLogger(opts.Logger)
	start := time.Now()

	plan, err := planExposure(ctx, c, &opts, opts.Progress)
	if err != nil {
		return nil, err
	}
	objs, generated, err := opts.Source.objects(ctx, c)
	if err != nil {
		return nil, err
	}
	objs = cleanForApply(append(objs, plan.extra...))
	if err := defaultNamespaces(c, objs, opts.Namespace); err != nil {
		return nil, err
	}
	objs, warnings, err := claimNamespaces(ctx, c, objs)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, plainHTTPWarnings(objs)...)
	if opts.PullSync != nil {
		extra, warning, err := pullSyncObjects(ctx, c, objs, generated, opts)
		if err != nil {
			return nil, err
		}
		objs = append(objs, extra...)
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	if opts.ServiceAccountAuth != nil {
		extra, err := serviceAccountAuthObjects(objs, *opts.ServiceAccountAuth)
		if err != nil {
			return nil, err
		}
		objs = append(objs, extra...)
	}
	applied, err := applyAll(ctx, c, objs, applyOptions{force: opts.ForceConflicts, dryRun: opts.DryRun})
	for _, a := range applied {
		suffix := ""
		if opts.DryRun != DryRunNone {
			suffix = fmt.Sprintf(" (%s dry run)", opts.DryRun)
		}
		fmt.Fprintf(opts.Progress, "%s %s%s\n", a.Ref(), a.Action, suffix)
	}
	res := &Result{Applied: applied, GeneratedUser: generated, PullPrefix: opts.PullAddress, Warnings: warnings, Puller: findPuller(objs)}
	if err != nil {
		// What was applied is returned with the error: a generated password already stored in the cluster must
		// still reach the user.
		return res, err
	}
	res.describeService(applied)
	waitFor, trust, err := res.applyNodeObjects(ctx, c, plan, applied, opts)
	if err != nil {
		return res, err
	}
	log.Debug("applied", "objects", len(res.Applied), "elapsed", time.Since(start))
	if opts.DryRun != DryRunNone || opts.NoWait {
		res.Elapsed = time.Since(start)
		if opts.DryRun == DryRunNone && len(opts.PullSecretNamespaces) > 0 {
			return res, createPullSecrets(ctx, c, res, opts)
		}
		return res, nil
	}

	probes, err := res.probeCandidates(ctx, c, opts.Address)
	if err != nil {
		return nil, err
	}
	endpoint, err := waitReady(ctx, c, waitFor, waitOptions{
		deadline: start.Add(opts.Timeout), timeout: opts.Timeout, interval: opts.Interval, report: opts.ReportEvery,
		probe: probes, progress: opts.Progress,
	})
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	res.Endpoint = endpoint
	if endpoint != "" {
		res.PushAddress = hostPort(endpoint)
		if opts.Address == "" && opts.PullAddress == "" && len(probes) > 0 && endpoint != probes[0] && plan.choice.Mode == expose.NodePortLocalhost {
			res.loopbackMissing(isLocalAddress(hostOnly(res.PushAddress)))
		}
	}
	if trust != "" {
		res.NodeTrust, err = waitDaemonSet(ctx, c, NodesNamespace, trust, opts.Progress, trustTimeout)
		if err != nil {
			return res, err
		}
	}
	if err := res.applyLocalRegistryHosting(ctx, c, opts); err != nil {
		return res, err
	}
	if opts.Canary {
		if res.Canary, err = Canary(ctx, c, res, opts.Progress); err != nil {
			return res, err
		}
		var failed []string
		for _, cr := range res.Canary {
			if !cr.OK {
				failed = append(failed, cr.Node)
			}
		}
		if len(failed) > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("canary: %d of %d nodes cannot pull from %s (%s): see the canary lines for the fix",
				len(failed), len(res.Canary), res.PullPrefix, strings.Join(failed, ", ")))
		}
	}
	if len(opts.PullSecretNamespaces) > 0 {
		if err := createPullSecrets(ctx, c, res, opts); err != nil {
			return res, err
		}
	}
	return res, nil
}

func plainHTTPWarnings(objs []*unstructured.Unstructured) []string {
	ro := make([]runtime.Object, len(objs))
	for i, u := range objs {
		ro[i] = u
	}
	return manifests.PlainHTTPWarnings(ro)
}

// loopbackMissing handles a node port that answers on a node IP but not on 127.0.0.1 from here. When the
// answering IP belongs to this machine, this machine is that node, and its loopback is known not to work: pods
// there must use the node IP (which containerd only pulls from over plain HTTP with a certs.d entry). Otherwise
// nothing is known about the nodes' loopback, so the prefix stays and a warning says what to check.
func (r *Result) loopbackMissing(onThisNode bool) {
	why := "kube-proxy serves node ports on the node's IP only (--nodeport-addresses without 127.0.0.0/8, " +
		"--iptables-localhost-nodeports=false, or nftables/IPVS mode)"
	if onThisNode {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the node port answers on %s but not on this node's loopback: %s; pods use %s instead of %s",
			r.PushAddress, why, r.PushAddress, r.PullPrefix))
		r.PullPrefix = r.PushAddress
		return
	}
	r.Warnings = append(r.Warnings, fmt.Sprintf("the node port answers on %s but not on 127.0.0.1 here: if on the nodes too %s, "+
		"pods cannot pull from %s; then redeploy with --pull-address %s and make each node's containerd trust it "+
		"(certs.d/%s/hosts.toml with server = \"http://%s\")", r.PushAddress, why, r.PullPrefix, r.PushAddress, r.PushAddress, r.PushAddress))
}

func hostOnly(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

// isLocalAddress reports whether ip is assigned to one of this machine's interfaces.
func isLocalAddress(ip string) bool {
	want := net.ParseIP(ip)
	if want == nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(want) {
			return true
		}
	}
	return false
}

// describeService finds the registry's Service among the applied objects and, for a node port, the pull prefix.
func (r *Result) describeService(applied []Applied) {
	for _, a := range applied {
		u := a.Object
		if u.GetKind() == "Deployment" && hasArg(u, "--tls-cert") {
			r.TLS = true
		}
		if u.GetKind() != "Service" || (r.Service != "" && !isOurs(u)) || isRedis(u) {
			continue
		}
		r.Namespace, r.Service = u.GetNamespace(), u.GetName()
		r.ServiceType, _, _ = unstructured.NestedString(u.Object, "spec", "type")
		if r.ServiceType == "" {
			r.ServiceType = "ClusterIP"
		}
		r.NodePort = 0
		ports, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
		for _, p := range ports {
			if pm, ok := p.(map[string]any); ok {
				if np, ok, _ := unstructured.NestedFieldNoCopy(pm, "nodePort"); ok {
					r.NodePort = toInt64(np)
					break
				}
			}
		}
	}
	if r.NodePort != 0 && r.PullPrefix == "" {
		r.PullPrefix = net.JoinHostPort(NodeLocalHost, strconv.FormatInt(r.NodePort, 10))
	}
}

// NodeLocalHost is the host pods put in image names: the node's container runtime reaches the Service's node
// port on its own loopback (kube-proxy enables route_localnet for it), and containerd and CRI-O talk plain HTTP
// to a loopback registry without any certs.d configuration.
const NodeLocalHost = "localhost"

// probeCandidates lists the base URLs to probe /v2/ on: the given address, or the node port on 127.0.0.1 and on
// every node's InternalIP.
func (r *Result) probeCandidates(ctx context.Context, c Clients, address string) ([]string, error) {
	scheme := "http://"
	if r.TLS {
		scheme = "https://"
	}
	if address != "" {
		return []string{scheme + address}, nil
	}
	if r.NodePort == 0 {
		return nil, nil
	}
	port := strconv.FormatInt(r.NodePort, 10)
	out := []string{scheme + net.JoinHostPort("127.0.0.1", port)}
	ips, err := nodeAddresses(ctx, c)
	if errors.Is(err, ErrForbidden) {
		// Without the right to list nodes, only the loopback address is tried.
		r.Warnings = append(r.Warnings, "cannot list nodes (RBAC), so only 127.0.0.1 was probed for the node port")
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		out = append(out, scheme+net.JoinHostPort(ip, port))
	}
	return out, nil
}

func hostPort(base string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(base) > len(p) && base[:len(p)] == p {
			return base[len(p):]
		}
	}
	return base
}

func hasArg(u *unstructured.Unstructured, prefix string) bool {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		args, _, _ := unstructured.NestedStringSlice(cm, "args")
		for _, a := range args {
			if len(a) >= len(prefix) && a[:len(prefix)] == prefix {
				return true
			}
		}
	}
	return false
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}

// isRedis reports whether an object belongs to the in-cluster Redis (--with-redis), not to the registry.
func isRedis(u *unstructured.Unstructured) bool {
	return u.GetLabels()[manifests.LabelName] == manifests.AppName+"-redis"
}

// isOurs reports whether an object carries the managed-by label the generator sets.
func isOurs(u *unstructured.Unstructured) bool {
	return u.GetLabels()[labelManagedBy] == managedByValue
}

const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedByValue = "registry-kit"
)

// cleanForApply drops what an apply body must not carry: status, and server-set metadata a round trip through a
// typed object leaves behind (creationTimestamp: null).
func cleanForApply(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, u := range objs {
		u = u.DeepCopy()
		delete(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(u.Object, "metadata", "uid")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		out = append(out, u)
	}
	return out
}
