//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/doctor"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
	"github.com/registry-kit/registry-kit/manifests"
)

// TestDeploySyncPullSecrets: a ServiceAccount bound to exactly the Role and ClusterRole of --print-rbac runs
// `deploy --sync-pull-secrets=SELECTOR`: the registry and the controller (two replicas, one Lease) come up, a
// namespace labelled afterwards gets the copy and a Deployment there pulls from the registry through its default
// ServiceAccount; a second deploy changes nothing; `undeploy --delete-copies` removes the controller and its
// copies and references, and nothing else.
func TestDeploySyncPullSecrets(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	saNS, sa, tok, kubeconfig := newDeployer(t, cs)
	ns := depNamespace(t, cs, "e2e-psdeploy")
	// The admin hands the namespace over; the role is exactly what --print-rbac --sync-pull-secrets prints.
	bindDeployRole(t, cs, saNS, sa, ns, true, "--sync-pull-secrets")
	class := depUniqueName("e2e-psdeploy-pv")
	depHostPathPV(t, cs, class, ns, "registry")
	port := depFreeNodePort(t, cs)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	const label = "registry-kit.dev/e2e-psdeploy"
	args := []string{"deploy", "--kubeconfig", kubeconfig, "-n", ns, "--image", image, "--node-port", fmt.Sprint(port),
		"--storage-class", class, "--storage-size", "1Gi", "--timeout", "3m", "--sync-pull-secrets=" + label + "=" + tag}
	t.Cleanup(func() { // if the test fails before its own undeploy
		_ = depRun(t, "", "undeploy", "-n", ns, "--delete-copies")
	})

	first := depRun(t, "", args...)
	m := depPasswordLine.FindStringSubmatch(first.out)
	if m == nil {
		t.Fatalf("deploy printed no generated password (err %v):\n%s", first.err, depRedact(first.out, tok))
	}
	password := m[1]
	out := depRedact(first.out, password, tok)
	if first.err != nil {
		t.Fatalf("deploy --sync-pull-secrets with the --print-rbac role: %v\n%s", first.err, out)
	}
	t.Logf("deploy --sync-pull-secrets, from scratch to serving: %s", first.elapsed.Round(100*time.Millisecond))
	if strings.Contains(out, "it can push") {
		t.Errorf("deploy warns that the copies can push, but they should hold the pull-only user:\n%s", out)
	}
	for _, want := range []string{
		"secret/registry-kit-pull created", "serviceaccount/" + syncer.AppName + " created",
		"clusterrole.rbac.authorization.k8s.io/" + syncer.AppName + " created", "role.rbac.authorization.k8s.io/" + syncer.AppName + " created",
		"deployment.apps/" + syncer.AppName + " created"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	push := depField(first.out, "Push from this machine to:")
	prefix := strings.TrimSuffix(depField(first.out, "Image prefix for pods:"), "/")
	if want := fmt.Sprintf("localhost:%d", port); prefix != want {
		t.Fatalf("image prefix %q, want %q (the source secret is written for the node-local address):\n%s", prefix, want, out)
	}
	ref := pushTestApp(t, push, "admin", password, "e2e/psdeploy-"+tag)
	podImage := prefix + ref[strings.Index(ref, "/"):]

	// Both replicas run; one holds the Lease.
	ctx := context.Background()
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, syncer.AppName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && strings.HasPrefix(*l.Spec.HolderIdentity, syncer.AppName+"-"), nil
	})
	if err != nil {
		t.Fatalf("no controller pod holds the Lease %s/%s", ns, syncer.AppName)
	}

	// A namespace labelled for the controller: its Deployment's pod pulls through the patched default ServiceAccount.
	app := depUniqueName("e2e-psdeploy-app")
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app, Labels: map[string]string{label: tag, "registry-kit.dev/e2e": "true"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), app, metav1.DeleteOptions{}) })
	if _, err := cs.AppsV1().Deployments(app).Create(ctx, appDeployment("psdeploy", podImage), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e := &psyncEnv{cs: cs}
	e.waitSA(t, app, "default", "registry-kit-pull")
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(app).List(ctx, metav1.ListOptions{LabelSelector: "app=psdeploy"})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				return true, nil
			}
			if len(p.Spec.ImagePullSecrets) == 0 && failingPull(&p) {
				_ = cs.CoreV1().Pods(app).Delete(ctx, p.Name, metav1.DeleteOptions{}) // admitted before the patch
			}
		}
		return false, nil
	})
	if err != nil {
		pods, _ := cs.CoreV1().Pods(app).List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			t.Log(describePod(cs, app, p.Name))
		}
		t.Fatalf("the app in namespace %s did not run with the controller's copy", app)
	}
	// The copy holds the pull-only user, never the admin.
	cp, err := cs.CoreV1().Secrets(app).Get(ctx, "registry-kit-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the copy in %s: %v", app, err)
	}
	cfg, err := dockerconfig.Parse(cp.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		t.Fatalf("the copy in %s: %v", app, err)
	}
	for server, e := range cfg.Auths {
		if e.Username != manifests.PullerUser {
			t.Errorf("the copy in %s holds user %q for %s, want the pull-only %q", app, e.Username, server, manifests.PullerUser)
		}
	}

	// doctor on a pod in a namespace the selector leaves out names the label to add; adding it fixes the pull.
	out2 := newNamespace(t)
	createPodObject(t, cs, out2, testAppPod("outside", podImage, corev1.PullAlways))
	waitPodWaitingReason(t, cs, out2, "outside", "ErrImagePull", "ImagePullBackOff")
	doc := runDoctorBinary(t, "outside", "-n", out2)
	fix := "kubectl label namespace " + out2 + " " + label + "=" + tag
	var found bool
	for _, img := range doc.report.Pods[0].Images {
		for _, ch := range img.Checks {
			if ch.Name == doctor.CheckPullSecretSync && ch.Cause == doctor.CausePullSyncNotReached && strings.HasPrefix(ch.Fix, fix) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("doctor does not say to run %q:\n%s", fix, doc.text())
	}
	p := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, label, tag)
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, out2, types.MergePatchType, []byte(p), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSA(t, out2, "default", "registry-kit-pull")
	if err := cs.CoreV1().Pods(out2).Delete(ctx, "outside", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	depWaitGone(t, "pod "+out2+"/outside", func(ctx context.Context) error {
		_, err := cs.CoreV1().Pods(out2).Get(ctx, "outside", metav1.GetOptions{})
		return err
	})
	createPodObject(t, cs, out2, testAppPod("outside", podImage, corev1.PullAlways))
	waitPodPhase(t, cs, out2, "outside", corev1.PodRunning)

	// Idempotent.
	second := depRun(t, "", args...)
	if second.err != nil || depPasswordLine.MatchString(second.out) {
		t.Fatalf("second deploy: err %v (it must keep the password):\n%s", second.err, depRedact(second.out, password, tok))
	}
	for _, line := range strings.Split(second.out, "\n") {
		if strings.Contains(line, syncer.AppName) && (strings.HasSuffix(line, " created") || strings.HasSuffix(line, " configured")) {
			t.Errorf("second deploy changed the controller: %q", line)
		}
	}

	// --rotate-puller-password: the controller's copy follows within seconds, the old password is refused, and a
	// new pod pulls with the new one.
	oldPW := copyPassword(t, cs, app)
	rot := depRun(t, "", append(args, "--rotate-puller-password")...)
	if rot.err != nil {
		t.Fatalf("deploy --rotate-puller-password: %v\n%s", rot.err, depRedact(rot.out, password, tok, oldPW))
	}
	rotated := time.Now()
	var newPW string
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		newPW = copyPassword(t, cs, app)
		return newPW != oldPW, nil
	}); err != nil {
		t.Fatalf("the copy in %s still holds the old puller password a minute after --rotate-puller-password", app)
	}
	t.Logf("--rotate-puller-password: the copy in %s followed %s after deploy returned", app, time.Since(rotated).Round(10*time.Millisecond))
	// The registry reads the htpasswd from its mounted Secret, which the kubelet refreshes on its own schedule
	// (about a minute): from then on the old password is refused and the new one accepted.
	v2Status := func(pw string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+push+"/v2/", nil)
		req.SetBasicAuth(manifests.PullerUser, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var oldStatus, newStatus int
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		oldStatus, newStatus = v2Status(oldPW), v2Status(newPW)
		return oldStatus == http.StatusUnauthorized && newStatus == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("3 minutes after --rotate-puller-password: GET /v2/ with the old puller password %d (want 401), with the new %d (want 200)", oldStatus, newStatus)
	}
	t.Logf("--rotate-puller-password: the registry refused the old password and took the new one %s after deploy returned", time.Since(rotated).Round(100*time.Millisecond))
	createPodObject(t, cs, app, testAppPod("after-rotation", podImage, corev1.PullAlways))
	waitPodPhase(t, cs, app, "after-rotation", corev1.PodRunning)

	// undeploy --delete-copies, with the same role.
	un := depRun(t, "", "undeploy", "--kubeconfig", kubeconfig, "-n", ns, "--delete-copies", "--delete-data")
	unOut := depRedact(un.out, password, tok)
	if un.err != nil {
		t.Fatalf("undeploy --delete-copies: %v\n%s", un.err, unOut)
	}
	for _, want := range []string{"secret/" + app + "/registry-kit-pull deleted", "clusterrole.rbac.authorization.k8s.io/" + syncer.AppName + " deleted",
		"deployment.apps/" + syncer.AppName + " deleted"} {
		if !strings.Contains(unOut, want) {
			t.Errorf("undeploy output lacks %q:\n%s", want, unOut)
		}
	}
	if _, err := cs.CoreV1().Secrets(app).Get(ctx, "registry-kit-pull", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the copy in %s is still there (err %v)", app, err)
	}
	acct, err := cs.CoreV1().ServiceAccounts(app).Get(ctx, "default", metav1.GetOptions{})
	if err != nil || slices.ContainsFunc(acct.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "registry-kit-pull" }) {
		t.Errorf("the controller's reference is still on %s/default (err %v)", app, err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, syncer.AppName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole %s is still there (err %v)", syncer.AppName, err)
	}
}

// copyPassword is the puller password in the controller's copy in namespace ns.
func copyPassword(t *testing.T, cs kubernetes.Interface, ns string) string {
	t.Helper()
	cp, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "registry-kit-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the copy in %s: %v", ns, err)
	}
	cfg, err := dockerconfig.Parse(cp.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		t.Fatalf("the copy in %s: %v", ns, err)
	}
	for _, e := range cfg.Auths {
		return e.Password
	}
	t.Fatalf("the copy in %s has no entry", ns)
	return ""
}
