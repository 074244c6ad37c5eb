package deploy

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/doctor"
	"github.com/registry-kit/registry-kit/deploy/pullsecret"
	"github.com/registry-kit/registry-kit/manifests"
)

// canaryRepo is the repository the canary asks every node to pull. Nothing is pushed there: the registry's "not
// found" answer proves that the node reached it, trusted its certificate and was let in with the pull Secret,
// which is everything a real pull needs but the layers.
const canaryRepo = "registry-kit/canary:probe"

const canaryTimeout = 90 * time.Second

// CanaryResult is what one node's pull attempt showed.
type CanaryResult struct {
	Node    string
	OK      bool
	Message string // what happened, or the pull error
	Fix     string // for a failure: what to change
	Elapsed time.Duration
}

func (r CanaryResult) String() string {
	if r.OK {
		return fmt.Sprintf("%s: %s (%.1fs)", r.Node, r.Message, r.Elapsed.Seconds())
	}
	s := fmt.Sprintf("%s: %s", r.Node, r.Message)
	if r.Fix != "" {
		s += "\n    fix: " + r.Fix
	}
	return s
}

// Canary makes the container runtime of every node pull from the registry's pull prefix once (a pod per node,
// pinned with nodeName, imagePullPolicy Always, the pull-only user's credentials) and reports per node. The pods
// and their Secret are deleted afterwards.
func Canary(ctx context.Context, c Clients, r *Result, progress io.Writer) ([]CanaryResult, error) {
	if r.PullPrefix == "" {
		return nil, fmt.Errorf("canary: no pull prefix (the Service is %s)", r.ServiceType)
	}
	if progress == nil {
		progress = io.Discard
	}
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explain(err, "list", "nodes")
	}
	if _, err := applyAll(ctx, c, []*unstructured.Unstructured{mustUnstructured(nodesNamespace())}, applyOptions{dryRun: DryRunNone}); err != nil {
		return nil, err
	}
	base := r.Namespace + "-" + r.Service + "-canary"
	labels := map[string]string{LabelRegistryNamespace: r.Namespace, LabelRegistryName: r.Service, labelManagedBy: managedByValue, "app.kubernetes.io/name": "registry-kit-canary"}
	var secrets []corev1.LocalObjectReference
	if r.Puller != nil {
		payload, err := dockerconfig.Build(dockerconfig.Entry{Server: r.PullPrefix, Username: r.Puller.User.Name, Password: r.Puller.User.Password})
		if err != nil {
			return nil, fmt.Errorf("canary: %w", err)
		}
		s := pullsecret.Secret(base, NodesNamespace, payload)
		s.Labels = labels
		_ = c.Kube.CoreV1().Secrets(NodesNamespace).Delete(ctx, base, metav1.DeleteOptions{})
		if _, err := c.Kube.CoreV1().Secrets(NodesNamespace).Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return nil, explain(err, "create", fmt.Sprintf("secret %q in namespace %q", base, NodesNamespace))
		}
		defer c.Kube.CoreV1().Secrets(NodesNamespace).Delete(context.WithoutCancel(ctx), base, metav1.DeleteOptions{})
		secrets = []corev1.LocalObjectReference{{Name: base}}
	}
	image := r.PullPrefix + "/" + canaryRepo
	started := map[string]time.Time{}
	pods := map[string]string{}
	for _, n := range nodes.Items {
		name := canaryPodName(base, n.Name)
		_ = c.Kube.CoreV1().Pods(NodesNamespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: NodesNamespace, Labels: labels},
			Spec: corev1.PodSpec{
				NodeName: n.Name, Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				RestartPolicy: corev1.RestartPolicyNever, ImagePullSecrets: secrets,
				AutomountServiceAccountToken: ptr.To(false), TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{Name: "canary", Image: image, ImagePullPolicy: corev1.PullAlways}},
			},
		}
		if err := waitGone(ctx, c, name); err != nil {
			return nil, err
		}
		if _, err := c.Kube.CoreV1().Pods(NodesNamespace).Create(ctx, pod, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return nil, explain(err, "create", fmt.Sprintf("pod %q in namespace %q", name, NodesNamespace))
		}
		started[n.Name], pods[n.Name] = time.Now(), name
	}
	defer func() {
		for _, name := range pods {
			_ = c.Kube.CoreV1().Pods(NodesNamespace).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	}()
	fmt.Fprintf(progress, "canary: every node pulls %s once\n", image)
	results := map[string]CanaryResult{}
	deadline := time.Now().Add(canaryTimeout)
	for len(results) < len(pods) && time.Now().Before(deadline) {
		for node, name := range pods {
			if _, done := results[node]; done {
				continue
			}
			p, err := c.Kube.CoreV1().Pods(NodesNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			if res, done := canaryOutcome(p, r); done {
				res.Node, res.Elapsed = node, time.Since(started[node])
				results[node] = res
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	out := make([]CanaryResult, 0, len(pods))
	for node := range pods {
		res, ok := results[node]
		if !ok {
			res = CanaryResult{Node: node, Message: fmt.Sprintf("no pull result within %s (is the node Ready?)", canaryTimeout)}
		}
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// canaryOutcome reads the pull's result from the pod's container status.
func canaryOutcome(p *corev1.Pod, r *Result) (CanaryResult, bool) {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running != nil || s.State.Terminated != nil || s.ImageID != "" {
			return CanaryResult{OK: true, Message: "pulled " + s.Image}, true
		}
		w := s.State.Waiting
		if w == nil || (w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff") || w.Message == "" {
			continue
		}
		msg := w.Message
		class := doctor.ClassifyEvent(msg)
		if class == doctor.EventNotFound && !strings.Contains(msg, "401") {
			how := "plain HTTP"
			if r.TLS {
				how = "TLS, certificate trusted"
			}
			return CanaryResult{OK: true, Message: fmt.Sprintf("reached %s (%s, pull credentials accepted)", r.PullPrefix, how)}, true
		}
		return CanaryResult{Message: oneLine(msg), Fix: canaryFix(class, r)}, true
	}
	return CanaryResult{}, false
}

func canaryFix(class doctor.EventClass, r *Result) string {
	switch class {
	case doctor.EventTLSUntrusted:
		return fmt.Sprintf("the node does not trust the registry's CA: registry-kit nodes trust -n %s (or deploy --configure-nodes)", r.Namespace)
	case doctor.EventHTTPServed:
		return fmt.Sprintf("the node spoke HTTPS to a plain-HTTP registry: registry-kit nodes trust -n %s writes its hosts.toml (or use --expose node-proxy)", r.Namespace)
	case doctor.EventUnauthorized:
		return "the pull credentials were refused: redeploy (the puller Secret and the registry's htpasswd must agree)"
	}
	return fmt.Sprintf("the node cannot reach %s: check kube-proxy on it, or deploy with --expose node-proxy", r.PullPrefix)
}

func canaryPodName(base, node string) string {
	n := base + "-" + node
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-.")
	}
	return n
}

func waitGone(ctx context.Context, c Clients, name string) error {
	for i := 0; i < 60; i++ {
		_, err := c.Kube.CoreV1().Pods(NodesNamespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("canary: pod %s/%s from an earlier run is still terminating", NodesNamespace, name)
}

// NodeCanary runs Canary for a registry deploy put in namespace ns (name "" for the default): `registry-kit
// doctor --nodes`. pullAddress overrides the pull prefix read from the cluster.
func NodeCanary(ctx context.Context, c Clients, ns, name, pullAddress string, progress io.Writer) ([]CanaryResult, error) {
	_, r, _, err := deployedPlan(ctx, c, TrustOptions{Namespace: ns, Name: name, PullAddress: pullAddress})
	if err != nil {
		return nil, err
	}
	if proxy, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).Get(ctx, r.Namespace+"-"+r.Service+"-proxy", metav1.GetOptions{}); err == nil && pullAddress == "" {
		for _, a := range proxy.Spec.Template.Spec.Containers[0].Args {
			if l, ok := strings.CutPrefix(a, "--listen=127.0.0.1:"); ok {
				r.PullPrefix = NodeLocalHost + ":" + l
			}
		}
	}
	if s, err := c.Kube.CoreV1().Secrets(r.Namespace).Get(ctx, r.Service+"-puller", metav1.GetOptions{}); err == nil {
		r.Puller = &Puller{User: manifestsUser(string(s.Data[corev1.BasicAuthUsernameKey]), string(s.Data[corev1.BasicAuthPasswordKey])), Namespace: r.Namespace, Secret: s.Name}
	}
	return Canary(ctx, c, r, progress)
}

func manifestsUser(name, password string) manifests.User {
	return manifests.User{Name: name, Password: password}
}
