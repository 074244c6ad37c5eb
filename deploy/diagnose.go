package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/registry-kit/registry-kit/manifests"
)

// diagnose explains why the applied objects are not ready: claims that do not bind, and the registry's own pods
// that cannot pull their image, crash, or cannot be scheduled. Each hint names the object and says what to do.
// Errors reading the cluster become hints themselves: the diagnosis must never hide the timeout.
func diagnose(ctx context.Context, c Clients, applied []Applied) []string {
	var hints []string
	for _, a := range applied {
		ns, name := a.Object.GetNamespace(), a.Object.GetName()
		switch a.Object.GetKind() {
		case "PersistentVolumeClaim":
			hints = append(hints, diagnoseClaim(ctx, c, ns, name)...)
		case "Deployment":
			hints = append(hints, diagnoseDeployment(ctx, c, ns, name)...)
		}
	}
	return hints
}

func diagnoseClaim(ctx context.Context, c Clients, ns, name string) []string {
	pvc, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return []string{fmt.Sprintf("reading persistentvolumeclaim %s/%s: %v", ns, name, err)}
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		return nil
	}
	class := "(none: the cluster default, if any)"
	if pvc.Spec.StorageClassName != nil {
		class = fmt.Sprintf("%q", *pvc.Spec.StorageClassName)
	}
	hint := fmt.Sprintf("persistentvolumeclaim %s/%s is %s (storage class %s)", ns, name, pvc.Status.Phase, class)
	if evs := eventMessages(ctx, c, ns, "PersistentVolumeClaim", name); len(evs) > 0 {
		hint += ": " + strings.Join(evs, "; ")
	}
	hint += ". Give the cluster a way to bind it: a default StorageClass with a provisioner, --storage-class NAME for one that exists, " +
		"a PersistentVolume that matches its size and access mode, or --existing-claim NAME"
	return []string{hint}
}

func diagnoseDeployment(ctx context.Context, c Clients, ns, name string) []string {
	d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return []string{fmt.Sprintf("reading deployment %s/%s: %v", ns, name, err)}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		sel = labels.Nothing()
	}
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return []string{fmt.Sprintf("listing the pods of deployment %s/%s: %v", ns, name, err)}
	}
	if len(pods.Items) == 0 {
		hint := fmt.Sprintf("deployment %s/%s has no pods", ns, name)
		if evs := eventMessages(ctx, c, ns, "ReplicaSet", ""); len(evs) > 0 {
			hint += ": " + strings.Join(evs, "; ")
		}
		return []string{hint}
	}
	var hints []string
	for i := range pods.Items {
		if h := diagnosePod(ctx, c, &pods.Items[i]); h != "" {
			hints = append(hints, h)
		}
	}
	return hints
}

// diagnosePod says what keeps one registry pod from being ready, or "" when it is ready.
func diagnosePod(ctx context.Context, c Clients, p *corev1.Pod) string {
	where := fmt.Sprintf("pod %s/%s", p.Namespace, p.Name)
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return fmt.Sprintf("%s cannot be scheduled: %s", where, cond.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return fmt.Sprintf("%s container %q is %s: %s%s", where, cs.Name, w.Reason, w.Message, waitingAdvice(w.Reason, cs.Image, cs.LastTerminationState))
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("%s container %q exited %d (%s): %s", where, cs.Name, t.ExitCode, t.Reason, oneLine(t.Message))
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return ""
		}
	}
	hint := fmt.Sprintf("%s is %s and not ready", where, p.Status.Phase)
	if evs := eventMessages(ctx, c, p.Namespace, "Pod", p.Name); len(evs) > 0 {
		hint += ": " + strings.Join(evs, "; ")
	}
	return hint
}

func waitingAdvice(reason, image string, last corev1.ContainerState) string {
	switch reason {
	case "ErrImagePull", "ImagePullBackOff":
		return pullAdvice(image)
	case "InvalidImageName":
		return fmt.Sprintf(" (fix --image %q)", image)
	case "CrashLoopBackOff":
		if t := last.Terminated; t != nil {
			return fmt.Sprintf(" (last exit %d %s %s; see kubectl logs --previous)", t.ExitCode, t.Reason, oneLine(t.Message))
		}
		return " (see kubectl logs --previous)"
	case "CreateContainerConfigError":
		return " (a Secret or ConfigMap the pod refers to is missing)"
	}
	return ""
}

// pullAdvice says how to get image onto the nodes. The development default is a local tag no registry serves.
func pullAdvice(image string) string {
	if image == manifests.DefaultImage || image == "docker.io/library/"+manifests.DefaultImage {
		return fmt.Sprintf(" (the node cannot pull the registry-kit image %q itself: it is the local tag of a development build, "+
			"which exists only where make image ran. Import it on every node: ctr -n k8s.io images import bin/image/registry-kit.tar; "+
			"or push it where the nodes can pull: registry-kit image push HOST/registry-kit:dev, and pass --image HOST/registry-kit:dev)", image)
	}
	return fmt.Sprintf(" (the node cannot pull the registry-kit image %q itself: load it into the node's container runtime, "+
		"or push it where the nodes can pull (registry-kit image push REF) and pass --image with that reference)", image)
}

// eventMessages returns the distinct recent Warning event messages about one object (any name when name is "").
func eventMessages(ctx context.Context, c Clients, ns, kind, name string) []string {
	set := fields.Set{"involvedObject.kind": kind, "type": corev1.EventTypeWarning}
	if name != "" {
		set["involvedObject.name"] = name
	}
	evs, err := c.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.SelectorFromSet(set).String()})
	if err != nil {
		return []string{fmt.Sprintf("(cannot read events: %v)", err)}
	}
	items := evs.Items
	sort.SliceStable(items, func(i, j int) bool { return items[i].LastTimestamp.After(items[j].LastTimestamp.Time) })
	var out []string
	seen := map[string]bool{}
	for _, e := range items {
		msg := e.Reason + ": " + oneLine(e.Message)
		if seen[msg] {
			continue
		}
		seen[msg] = true
		out = append(out, msg)
		if len(out) == 3 {
			break
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
