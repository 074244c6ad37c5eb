package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// CheckPullSecretSync looks at the pod's namespace through the eyes of a pull-secret controller
// (`registry-kit pull-secret sync`, deployed by `deploy --sync-pull-secrets`), when the cluster runs one.
const CheckPullSecretSync = "pull-secret-sync"

// CausePullSyncNotReached: a pull-secret controller runs, but its selector leaves the pod's namespace out.
const CausePullSyncNotReached Cause = "pull-secret-sync-not-reached"

// syncController is a pull-secret controller found in the cluster and what it copies where.
type syncController struct {
	ref string // namespace/deployment
	cfg syncer.Config
}

// syncControllers finds the pull-secret controllers once per run, from their Deployments' arguments.
func (d *diagnoser) syncControllers(ctx context.Context) []syncController {
	if d.syncRead {
		return d.syncCtls
	}
	d.syncRead = true
	list, err := d.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + syncer.AppName})
	if apierrors.IsForbidden(err) {
		// Most users of doctor may not list Deployments cluster-wide, and most clusters run no controller: no note.
		d.opts.Logger.Debug("cannot list deployments across namespaces: the pull-secret controller check is skipped")
		return nil
	}
	if err != nil {
		d.note("listing pull-secret controllers: %v", err)
		return nil
	}
	for _, dep := range list.Items {
		for _, c := range dep.Spec.Template.Spec.Containers {
			if len(c.Args) < 2 || c.Args[0] != "pull-secret" || c.Args[1] != "sync" {
				continue
			}
			cfg, err := syncer.ConfigFromArgs(c.Args[2:])
			if err != nil {
				d.note("pull-secret controller %s/%s: %v", dep.Namespace, dep.Name, err)
				continue
			}
			d.syncCtls = append(d.syncCtls, syncController{ref: dep.Namespace + "/" + dep.Name, cfg: cfg})
		}
	}
	return d.syncCtls
}

// checkPullSync says whether a pull-secret controller reaches the pod's namespace and ServiceAccount, and what to
// change when it does not.
func (r *imageRun) checkPullSync() {
	ctls := r.d.syncControllers(r.ctx)
	if len(ctls) == 0 {
		return
	}
	nsName := r.f.pod.Namespace
	ns, err := r.d.cs.CoreV1().Namespaces().Get(r.ctx, nsName, metav1.GetOptions{})
	if err != nil {
		r.d.note("cannot read namespace %q (%v): the pull-secret controller check is skipped", nsName, reason(err))
		return
	}
	noCreds := r.failing && len(r.f.keyring.Lookup(r.c.Image)) == 0 && len(r.f.saRing.Lookup(r.c.Image)) == 0
	for _, ctl := range ctls {
		r.add(r.pullSyncCheck(ctl, ns, noCreds))
	}
}

func (r *imageRun) pullSyncCheck(ctl syncController, ns *corev1.Namespace, noCreds bool) Check {
	target := ctl.cfg.TargetNameOf()
	ch := Check{Name: CheckPullSecretSync}
	ok, why := ctl.cfg.Namespaces.Match(ns)
	if !ok {
		ch.Status, ch.Message, ch.Fix = Warn, fmt.Sprintf("the pull-secret controller %s has not reached namespace %q (%s), so it has no copy of %s",
			ctl.ref, ns.Name, why, target), r.pullSyncFix(ctl, ns, why)
		if noCreds {
			ch.Status, ch.Cause = Fail, CausePullSyncNotReached
		}
		return ch
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: r.f.saName}}
	if got, err := r.d.cs.CoreV1().ServiceAccounts(ns.Name).Get(r.ctx, r.f.saName, metav1.GetOptions{}); err == nil {
		sa = got
	}
	hasTarget := slices.ContainsFunc(r.f.pod.Spec.ImagePullSecrets, func(l corev1.LocalObjectReference) bool { return l.Name == target })
	switch {
	case hasTarget:
		ch.Status, ch.Message = Pass, fmt.Sprintf("namespace %q is reached by the pull-secret controller %s and the pod has %s", ns.Name, ctl.ref, target)
	case !ctl.cfg.ServiceAccounts.Match(sa):
		ch.Status = Warn
		ch.Message = fmt.Sprintf("the pull-secret controller %s copies %s into namespace %q but does not patch serviceaccount %q", ctl.ref, target, ns.Name, r.f.saName)
		ch.Fix = fmt.Sprintf("list %s in the pod's imagePullSecrets, or have the controller patch %q too (--service-accounts)", target, r.f.saName)
	default:
		ch.Status = Warn
		ch.Message = fmt.Sprintf("namespace %q is reached by the pull-secret controller %s, but the pod has no %s: it was admitted before the controller patched serviceaccount %q "+
			"(pods take imagePullSecrets from their serviceaccount only when admitted; no webhook adds them later)", ns.Name, ctl.ref, target, r.f.saName)
		ch.Fix = "recreate the pod: " + r.recreateFix()
	}
	return ch
}

// pullSyncFix is the change that brings the namespace into the controller's selection.
func (r *imageRun) pullSyncFix(ctl syncController, ns *corev1.Namespace, why syncer.Reason) string {
	sel := ctl.cfg.Namespaces
	switch why {
	case syncer.LabelsDoNotFit:
		if add := syncer.MissingLabels(sel.Labels, ns.Labels); len(add) > 0 {
			return fmt.Sprintf("kubectl label namespace %s %s  (the controller selects %q)", ns.Name, strings.Join(add, " "), sel.Labels.String())
		}
		return fmt.Sprintf("give namespace %s labels matching %q", ns.Name, sel.Labels.String())
	case syncer.ExcludedByName:
		return fmt.Sprintf("the name matches the controller's --exclude-namespace %s: change that flag of %s", strings.Join(sel.Exclude, ","), ctl.ref)
	case syncer.NotIncluded:
		return fmt.Sprintf("add the name to the controller's --include-namespace %s (deployment %s)", strings.Join(sel.Include, ","), ctl.ref)
	}
	return ""
}
