package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/registry-kit/registry-kit/manifests"
)

// ErrNodeTrust is returned (wrapped) when the node-trust agent failed on a node; the message names each node and
// what to change.
var ErrNodeTrust = errors.New("node trust failed")

// trustTimeout bounds the wait for the trust DaemonSet on every node.
const trustTimeout = 3 * time.Minute

// waitDaemonSet waits until the DaemonSet's pod runs (and, for the trust agent, its init container succeeded) on
// every node it targets, and returns one line per node. A pod whose init container failed ends the wait at once
// with that node's message.
func waitDaemonSet(ctx context.Context, c Clients, ns, name string, progress io.Writer, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ds, err := c.Kube.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, explain(err, "get", fmt.Sprintf("daemonset %q in namespace %q", name, ns))
		}
		lines, failed, err := daemonSetNodes(ctx, c, ds)
		if err != nil {
			return nil, err
		}
		if len(failed) > 0 {
			return lines, fmt.Errorf("%w on %d node(s):\n  %s", ErrNodeTrust, len(failed), strings.Join(failed, "\n  "))
		}
		st := ds.Status
		if st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled > 0 && st.UpdatedNumberScheduled == st.DesiredNumberScheduled &&
			st.NumberReady == st.DesiredNumberScheduled && len(lines) == int(st.DesiredNumberScheduled) {
			return lines, nil
		}
		line := fmt.Sprintf("daemonset.apps/%s: %d of %d nodes ready", name, st.NumberReady, st.DesiredNumberScheduled)
		if line != last {
			fmt.Fprintf(progress, "waiting: %s\n", line)
			last = line
		}
		if time.Now().After(deadline) {
			return lines, fmt.Errorf("%w: daemonset %s/%s not ready on every node after %s (%d of %d ready)", ErrNotReady, ns, name, timeout, st.NumberReady, st.DesiredNumberScheduled)
		}
		select {
		case <-ctx.Done():
			return lines, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// daemonSetNodes describes the DaemonSet's current pods: "node: message" for each ready one (the init container's
// output), and the failures.
func daemonSetNodes(ctx context.Context, c Clients, ds *appsv1.DaemonSet) (lines, failed []string, err error) {
	sel := labels.SelectorFromSet(ds.Spec.Selector.MatchLabels).String()
	pods, err := c.Kube.CoreV1().Pods(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, nil, explain(err, "list", fmt.Sprintf("pods in namespace %q", ds.Namespace))
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !ownedBy(&p, ds) || p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
			continue
		}
		if !currentRevision(ctx, c, ds, &p) {
			continue
		}
		node := p.Spec.NodeName
		for _, s := range p.Status.InitContainerStatuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				failed = append(failed, fmt.Sprintf("%s: %s", node, oneLine(strings.TrimPrefix(strings.TrimSpace(t.Message), "Error: "))))
			} else if t := s.LastTerminationState.Terminated; t != nil && t.ExitCode != 0 && s.State.Terminated == nil {
				failed = append(failed, fmt.Sprintf("%s: %s", node, oneLine(strings.TrimPrefix(strings.TrimSpace(t.Message), "Error: "))))
			} else if t := s.State.Terminated; t != nil && t.ExitCode == 0 && podReady(&p) {
				lines = append(lines, fmt.Sprintf("%s: %s", node, oneLine(strings.TrimSpace(t.Message))))
			}
		}
		if len(p.Spec.InitContainers) == 0 && podReady(&p) {
			lines = append(lines, node+": ready")
		}
	}
	slices.Sort(lines)
	slices.Sort(failed)
	return lines, failed, nil
}

func ownedBy(p *corev1.Pod, ds *appsv1.DaemonSet) bool {
	for _, o := range p.OwnerReferences {
		if o.UID == ds.UID {
			return true
		}
	}
	return false
}

// currentRevision reports whether the pod runs the DaemonSet's current template (during a rollout the old pods
// still say what the old template did).
func currentRevision(ctx context.Context, c Clients, ds *appsv1.DaemonSet, p *corev1.Pod) bool {
	revs, err := c.Kube.AppsV1().ControllerRevisions(ds.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ds.Spec.Selector.MatchLabels).String()})
	if err != nil || len(revs.Items) == 0 {
		return true
	}
	latest := revs.Items[0]
	for _, r := range revs.Items {
		if r.Revision > latest.Revision {
			latest = r
		}
	}
	return p.Labels[appsv1.ControllerRevisionHashLabelKey] == latest.Labels[appsv1.ControllerRevisionHashLabelKey]
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TrustOptions say which deployed registry the nodes must trust (`registry-kit nodes trust|untrust`).
type TrustOptions struct {
	Namespace, Name string
	// PullAddress is the host:port the nodes pull from; default the deployed registry's (tls: first node's IP and
	// the node port).
	PullAddress                string
	ContainerdConfig, CertsDir string
	Progress                   io.Writer
}

// TrustNodes applies the node-trust DaemonSet for a deployed registry and waits until every node has its
// certs.d entry.
func TrustNodes(ctx context.Context, c Clients, o TrustOptions) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("nodes trust: %w", err)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	p, r, applied, err := deployedPlan(ctx, c, o)
	if err != nil {
		return err
	}
	if isLoopback(r.PullPrefix) {
		return fmt.Errorf("the nodes pull from %s, their own loopback: there is nothing to trust", r.PullPrefix)
	}
	image, policy := registryImage(applied)
	objs := append([]*unstructured.Unstructured{mustUnstructured(nodesNamespace())},
		p.trustObjects(r.PullPrefix, r.TLS, image, policy, NodeOptions{ContainerdConfig: o.ContainerdConfig, CertsDir: o.CertsDir}, false)...)
	done, err := applyAll(ctx, c, objs, applyOptions{dryRun: DryRunNone})
	printApplied(o.Progress, done, DryRunNone)
	if err != nil {
		return err
	}
	lines, err := waitDaemonSet(ctx, c, NodesNamespace, p.ns+"-"+p.name+"-trust", o.Progress, trustTimeout)
	for _, l := range lines {
		fmt.Fprintln(o.Progress, l)
	}
	return err
}

// UntrustNodes removes the certs.d entries the trust DaemonSet of a registry wrote, then the DaemonSet and its CA
// ConfigMap. It does nothing when there is no such DaemonSet.
func UntrustNodes(ctx context.Context, c Clients, o TrustOptions) error {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	_, err := untrust(ctx, c, o.Namespace, o.Name, o.Progress, DryRunNone)
	return err
}

// deployedPlan reads what deploy applied for a registry: its Service, Deployment and CA.
func deployedPlan(ctx context.Context, c Clients, o TrustOptions) (*exposurePlan, *Result, []Applied, error) {
	if o.Name == "" {
		o.Name = manifests.DefaultName
	}
	p := &exposurePlan{ns: o.Namespace, name: o.Name}
	var applied []Applied
	for _, kind := range []struct{ gv, kind string }{{"v1", "Service"}, {"apps/v1", "Deployment"}} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(kind.gv)
		u.SetKind(kind.kind)
		u.SetNamespace(o.Namespace)
		u.SetName(o.Name)
		ri, err := resourceFor(c, u)
		if err != nil {
			return nil, nil, nil, err
		}
		live, err := ri.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil, nil, fmt.Errorf("no registry %q deployed in namespace %q (%s not found): run registry-kit deploy first", o.Name, o.Namespace, strings.ToLower(kind.kind))
		}
		if err != nil {
			return nil, nil, nil, explain(err, "get", describe(u))
		}
		applied = append(applied, Applied{Object: live})
	}
	r := &Result{}
	r.describeService(applied)
	r.PullPrefix = ""
	if s, err := c.Kube.CoreV1().Secrets(o.Namespace).Get(ctx, CASecretName(o.Name), metav1.GetOptions{}); err == nil {
		p.ca = s.Data[caCertKey]
	}
	switch {
	case o.PullAddress != "":
		r.PullPrefix = o.PullAddress
	case r.TLS && r.NodePort != 0:
		ips, err := nodeAddresses(ctx, c)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(ips) == 0 {
			return nil, nil, nil, errors.New("the cluster has no node with an address: give --pull-address")
		}
		r.PullPrefix = fmt.Sprintf("%s:%d", ips[0], r.NodePort)
	case r.NodePort != 0:
		r.PullPrefix = fmt.Sprintf("%s:%d", NodeLocalHost, r.NodePort)
	default:
		return nil, nil, nil, errors.New("the registry's Service has no node port: give the address the nodes pull from with --pull-address")
	}
	return p, r, applied, nil
}

// untrust rolls the registry's trust DaemonSet to remove what it wrote, waits for every node, and deletes it and
// its CA ConfigMap. It returns the deleted objects.
func untrust(ctx context.Context, c Clients, ns, name string, progress io.Writer, dryRun DryRun) ([]string, error) {
	if name == "" {
		name = manifests.DefaultName
	}
	dsName := ns + "-" + name + "-trust"
	ds, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).Get(ctx, dsName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, explain(err, "get", fmt.Sprintf("daemonset %q in namespace %q", dsName, NodesNamespace))
	}
	if dryRun == DryRunNone && len(ds.Spec.Template.Spec.InitContainers) == 1 {
		ic := &ds.Spec.Template.Spec.InitContainers[0]
		if !slices.Contains(ic.Args, "--remove") {
			ic.Args = append(ic.Args, "--remove")
			if _, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).Update(ctx, ds, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
				return nil, explain(err, "update", fmt.Sprintf("daemonset %q in namespace %q", dsName, NodesNamespace))
			}
		}
		lines, err := waitDaemonSet(ctx, c, NodesNamespace, dsName, progress, trustTimeout)
		for _, l := range lines {
			fmt.Fprintln(progress, l)
		}
		if err != nil {
			return nil, fmt.Errorf("removing the nodes' certs.d entries (the DaemonSet is left in place; fix the nodes and run registry-kit nodes untrust): %w", err)
		}
	}
	return deleteNodeObjects(ctx, c, ns, name, dryRun, progress, "trust")
}

// deleteNodeObjects deletes the registry's objects in NodesNamespace whose name ends in one of suffixes ("" for
// all), and the namespace once nothing of any registry is left in it.
func deleteNodeObjects(ctx context.Context, c Clients, ns, name string, dryRun DryRun, progress io.Writer, suffixes ...string) ([]string, error) {
	sel := labels.SelectorFromSet(map[string]string{LabelRegistryNamespace: ns, LabelRegistryName: name}).String()
	var deleted []string
	del := metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationBackground)}
	if dryRun == DryRunServer {
		del.DryRun = []string{metav1.DryRunAll}
	}
	want := func(n string) bool {
		for _, s := range suffixes {
			if s == "" || strings.HasSuffix(n, "-"+s) || (s == "trust" && strings.HasSuffix(n, "-ca")) {
				return true
			}
		}
		return len(suffixes) == 0
	}
	suffix := ""
	if dryRun != DryRunNone {
		suffix = fmt.Sprintf(", %s dry run", dryRun)
	}
	dss, err := c.Kube.AppsV1().DaemonSets(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, explain(err, "list", fmt.Sprintf("daemonsets in namespace %q", NodesNamespace))
	}
	if err == nil {
		for _, d := range dss.Items {
			if !want(d.Name) {
				continue
			}
			if dryRun != DryRunClient {
				if err := c.Kube.AppsV1().DaemonSets(NodesNamespace).Delete(ctx, d.Name, del); err != nil && !apierrors.IsNotFound(err) {
					return deleted, explain(err, "delete", fmt.Sprintf("daemonset %q in namespace %q", d.Name, NodesNamespace))
				}
			}
			deleted = append(deleted, "daemonset.apps/"+d.Name)
			fmt.Fprintf(progress, "daemonset.apps/%s deleted (namespace %s%s)\n", d.Name, NodesNamespace, suffix)
		}
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(NodesNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err == nil {
		for _, cm := range cms.Items {
			if !want(cm.Name) {
				continue
			}
			if dryRun != DryRunClient {
				if err := c.Kube.CoreV1().ConfigMaps(NodesNamespace).Delete(ctx, cm.Name, del); err != nil && !apierrors.IsNotFound(err) {
					return deleted, explain(err, "delete", fmt.Sprintf("configmap %q in namespace %q", cm.Name, NodesNamespace))
				}
			}
			deleted = append(deleted, "configmap/"+cm.Name)
			fmt.Fprintf(progress, "configmap/%s deleted (namespace %s%s)\n", cm.Name, NodesNamespace, suffix)
		}
	}
	return deleted, nil
}
