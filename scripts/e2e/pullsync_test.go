//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// psyncLease is the lease timing the failover subtest runs with (short, so the test is quick).
const (
	psyncLeaseDuration = 6 * time.Second
	psyncRetryPeriod   = time.Second
)

// psyncEnv is one run of TestPullSecretSync: a private registry on the host, a source Secret, two controller
// replicas, and the names it owns.
type psyncEnv struct {
	cs          kubernetes.Interface
	reg         *serveInstance
	image       string
	srcNS       string
	tag, prefix string
	target      string
	label       string
	lease       string
	app         string
	created     []string
	procs       map[string]*syncProc
}

// TestPullSecretSync runs `registry-kit pull-secret sync` as two host processes against the real cluster and checks
// what a user of it is promised: 20 namespaces created in a tight loop, each followed at once by a Deployment pulling
// from the private registry, get their pods Running (the pull-secret window is measured and reported); a rotated
// password reaches every copy within seconds, new pods pull with it and the old one is refused; killing the leader
// hands over within the lease time and a namespace created meanwhile is handled; excluded and non-matching
// namespaces get nothing; unrelated imagePullSecrets stay.
func TestPullSecretSync(t *testing.T) {
	e := newPsyncEnv(t)
	t.Run("20 namespaces in a tight loop", e.testBurst)
	t.Run("password rotation", e.testRotation)
	t.Run("leader killed", e.testFailover)
	t.Run("excluded namespaces get nothing", e.testExcluded)
	t.Run("unrelated imagePullSecrets are kept", e.testUnrelatedKept)
}

func newPsyncEnv(t *testing.T) *psyncEnv {
	cs := kubeClient(t)
	kubeconfig := clusterEnv(t).get(t, "KUBECONFIG")
	reg := startServe(t)
	if reg.User == "" {
		t.Fatal("registry-kit serve should have created user admin")
	}
	trustRegistry(t, reg.Addr)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	e := &psyncEnv{
		cs: cs, reg: reg, srcNS: newNamespace(t), tag: tag,
		prefix: "e2e-psync-" + tag, target: "psync-" + tag, label: "registry-kit.dev/e2e-psync",
		lease: "psync-" + tag, app: "psync-app-" + tag, procs: map[string]*syncProc{},
	}
	e.image = pushTestApp(t, reg.Addr, reg.User, reg.Password, "e2e/pullsync-"+tag)
	deleteNamespacesAtEnd(t, cs, &e.created)
	createSecret(t, cs, e.srcNS, dockerConfigJSONSecret("source", reg.Addr, reg.User, reg.Password))
	args := []string{"--source", e.srcNS + "/source", "--target-name", e.target, "-n", e.srcNS, "--lease-name", e.lease,
		"--namespace-selector", e.label + "=" + tag, "--include-namespace", e.prefix + "-*",
		"--exclude-namespace", "kube-*," + e.prefix + "-skip-*",
		"--lease-duration", psyncLeaseDuration.String(), "--renew-deadline", "4s", "--retry-period", psyncRetryPeriod.String()}
	a := startSync(t, kubeconfig, "a-"+tag, args...)
	e.procs[a.id] = a
	e.waitLeader(t, func(id string) bool { return id == a.id })
	bproc := startSync(t, kubeconfig, "b-"+tag, args...)
	e.procs[bproc.id] = bproc
	return e
}

func (e *psyncEnv) waitLeader(t *testing.T, ok func(string) bool) string {
	t.Helper()
	var holder string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		holder = leaseHolder(t, e.cs, e.srcNS, e.lease)
		return holder != "" && ok(holder), nil
	})
	if err != nil {
		t.Fatalf("lease %s/%s: holder %q", e.srcNS, e.lease, holder)
	}
	return holder
}

// mkNS creates a namespace (deleted when the test ends), labelled for the controller when selected.
func (e *psyncEnv) mkNS(t *testing.T, name string, selected bool) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"registry-kit.dev/e2e": "true"}}}
	if selected {
		ns.Labels[e.label] = e.tag
	}
	if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	e.created = append(e.created, name)
	return name
}

// waitSA waits until the ServiceAccount's imagePullSecrets are exactly want.
func (e *psyncEnv) waitSA(t *testing.T, ns, name string, want ...string) {
	t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		sa, err := e.cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = nil
		for _, r := range sa.ImagePullSecrets {
			got = append(got, r.Name)
		}
		return slices.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("service account %s/%s: imagePullSecrets %v, want %v", ns, name, got, want)
	}
}

func (e *psyncEnv) testBurst(t *testing.T) {
	const n = 20
	times := watchDefaultSAs(t, e.target)
	ctx := context.Background()
	names := make([]string, n)
	start := make([]time.Time, n)
	for i := range n {
		start[i] = time.Now()
		names[i] = e.mkNS(t, fmt.Sprintf("%s-%02d", e.prefix, i), true)
		if _, err := e.cs.AppsV1().Deployments(names[i]).Create(ctx, appDeployment(e.app, e.image), metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment in %s: %v", names[i], err)
		}
	}
	t.Logf("created %d namespaces, each with a Deployment, in %s", n, time.Since(start[0]).Round(time.Millisecond))

	var delays, afterSA []time.Duration
	for i, ns := range names {
		e.waitSA(t, ns, "default", e.target)
		var seen, patched time.Time
		_ = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			seen, patched = times.get(ns)
			return !patched.IsZero(), nil
		})
		if patched.IsZero() || seen.IsZero() {
			t.Fatalf("the ServiceAccount watch missed namespace %s (%s)", ns, times.describe())
		}
		delays = append(delays, patched.Sub(start[i]))
		afterSA = append(afterSA, patched.Sub(seen))
	}
	t.Logf("namespace creation -> default ServiceAccount patched: %s", durationStats(delays))
	t.Logf("ServiceAccount creation (as watched) -> patched: %s", durationStats(afterSA))

	// Pods admitted before the patch have no pull secret and stay in ImagePullBackOff: delete them (their
	// ReplicaSet makes new ones, admitted with the secret) and count them.
	recreated := map[string]bool{}
	withSecretFailed := map[string]string{}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		running := 0
		for _, ns := range names {
			pods, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + e.app})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				switch key := ns + "/" + p.Name; {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase == corev1.PodRunning:
					running++
				case !failingPull(&p):
				case len(p.Spec.ImagePullSecrets) > 0:
					withSecretFailed[key] = pullMessage(&p)
				case !recreated[key]:
					recreated[key] = true
					_ = e.cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
				}
			}
		}
		return running == n, nil
	})
	if err != nil {
		for _, ns := range names {
			pods, _ := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + e.app})
			for _, p := range pods.Items {
				t.Logf("%s/%s: %s", ns, p.Name, describePod(e.cs, ns, p.Name))
			}
		}
		t.Fatalf("not every Deployment's pod is Running: %v", err)
	}
	// Pods admitted with the copy are never deleted here, so they all recovered by themselves. The kubelet can still
	// try a first pull without it when its Secret cache does not sync in time on this loaded machine ("Unable to
	// retrieve pull secret ... failed to sync secret cache"): report those.
	for key, msg := range withSecretFailed {
		t.Logf("pod %s, admitted with the pull secret, failed a pull and then recovered by itself: %.200s", key, msg)
	}
	t.Logf("pods in ErrImagePull/ImagePullBackOff without a pull secret (admitted before the ServiceAccount was patched): %d of %d, recreated; "+
		"admitted with it and failing a first pull: %d; all %d Deployments end Running", len(recreated), n, len(withSecretFailed), n)
}

func pullMessage(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			return w.Reason + ": " + w.Message
		}
	}
	return ""
}

// failingPull reports a pod waiting on its image pull.
func failingPull(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
			return true
		}
	}
	return false
}

func durationStats(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %s, median %s, max %s (n=%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}

func (e *psyncEnv) copiesIn() ([]string, error) {
	var out []string
	for _, ns := range e.created {
		if strings.HasPrefix(ns, e.prefix+"-") && len(ns) == len(e.prefix)+3 {
			out = append(out, ns)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no burst namespaces")
	}
	return out, nil
}

func (e *psyncEnv) testRotation(t *testing.T) {
	ctx := context.Background()
	namespaces, err := e.copiesIn()
	if err != nil {
		t.Fatal(err)
	}
	oldPass := e.reg.Password
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	newPass := hex.EncodeToString(b)
	runPullSecretRK(t, newPass+"\n", nil, false, "htpasswd", "add", "--file", filepath.Join(e.reg.DataDir, "htpasswd"), "--user", e.reg.User, "--password-stdin")
	updated := dockerConfigJSONSecret("source", e.reg.Addr, e.reg.User, newPass)
	want := updated.Data[corev1.DockerConfigJsonKey]
	src, err := e.cs.CoreV1().Secrets(e.srcNS).Get(ctx, "source", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src.Data = updated.Data
	start := time.Now()
	if _, err := e.cs.CoreV1().Secrets(e.srcNS).Update(ctx, src, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the source secret: %v", err)
	}
	pending := slices.Clone(namespaces)
	fast := watchClient(t) // the shared client's 5 requests/s would make the poll, not the controller, the bottleneck
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pending = slices.DeleteFunc(pending, func(ns string) bool {
			s, err := fast.CoreV1().Secrets(ns).Get(ctx, e.target, metav1.GetOptions{})
			return err == nil && bytes.Equal(s.Data[corev1.DockerConfigJsonKey], want)
		})
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("copies not updated within 30s in %v", pending)
	}
	t.Logf("source secret updated -> all %d copies updated: %s", len(namespaces), time.Since(start).Round(time.Millisecond))

	for _, ns := range namespaces {
		waitEvent(t, e.cs, ns, e.target, syncer.ReasonUpdated)
	}

	// The old password is refused by the registry ...
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		return basicStatus(t, e.reg.Addr, e.reg.User, oldPass) == http.StatusUnauthorized, nil
	})
	if err != nil {
		t.Fatal("the registry still accepts the old password 15s after the rotation")
	}
	// ... and by the kubelet; a new pod through the patched ServiceAccount pulls with the new one.
	ns := namespaces[0]
	createSecret(t, e.cs, ns, dockerConfigJSONSecret("old-"+e.tag, e.reg.Addr, e.reg.User, oldPass))
	createPod(t, e.cs, ns, "old-cred", e.image, "old-"+e.tag)
	createPodObject(t, e.cs, ns, testAppPod("new-cred", e.image, corev1.PullAlways))
	waitPodPhase(t, e.cs, ns, "new-cred", corev1.PodRunning)
	waitPodWaitingReason(t, e.cs, ns, "old-cred", "ErrImagePull", "ImagePullBackOff")
	if msgs := podEventMessages(t, e.cs, ns, "old-cred"); !strings.Contains(msgs, "401") && !strings.Contains(strings.ToLower(msgs), "unauthorized") {
		t.Errorf("the old credential's pull failed, but not as unauthorized: %s", msgs)
	}
	e.reg.Password = newPass
}

// waitEvent waits for an Event with reason on the Secret name in ns.
func waitEvent(t *testing.T, cs kubernetes.Interface, ns, name, reason string) {
	t.Helper()
	sel := fields.Set{"involvedObject.name": name, "involvedObject.kind": "Secret", "reason": reason}.AsSelector().String()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(evs.Items) > 0, nil
	})
	if err != nil {
		t.Errorf("no %s event on secret %s/%s", reason, ns, name)
	}
}

func (e *psyncEnv) testFailover(t *testing.T) {
	leader := leaseHolder(t, e.cs, e.srcNS, e.lease)
	p := e.procs[leader]
	if p == nil {
		t.Fatalf("lease holder %q is not one of the test's replicas", leader)
	}
	p.kill()
	killed := time.Now()
	ns := e.mkNS(t, e.prefix+"-failover", true)
	e.waitSA(t, ns, "default", e.target)
	took := time.Since(killed)
	holder := e.waitLeader(t, func(id string) bool { return id != leader })
	if e.procs[holder] == nil {
		t.Fatalf("new lease holder %q is not the other replica", holder)
	}
	t.Logf("leader %s killed -> %s leads and patched namespace %s created meanwhile: %s (lease duration %s)",
		leader, holder, ns, took.Round(time.Millisecond), psyncLeaseDuration)
	if limit := psyncLeaseDuration + 2*psyncRetryPeriod + 5*time.Second; took > limit {
		t.Errorf("takeover took %s, more than %s", took, limit)
	}
}

func (e *psyncEnv) testExcluded(t *testing.T) {
	ctx := context.Background()
	negatives := []string{
		e.mkNS(t, e.prefix+"-unlabelled", false),     // label selector does not match
		e.mkNS(t, "e2e-psyncx-"+e.tag, true),         // name outside --include-namespace
		e.mkNS(t, e.prefix+"-skip-"+e.tag[:2], true), // name in --exclude-namespace
	}
	marker := e.mkNS(t, e.prefix+"-marker", true)
	e.waitSA(t, marker, "default", e.target)
	for _, ns := range negatives {
		// Wait for the ServiceAccount to exist, give the controller its event, then check nothing came.
		e.waitSA(t, ns, "default")
	}
	time.Sleep(2 * time.Second)
	for _, ns := range negatives {
		if _, err := e.cs.CoreV1().Secrets(ns).Get(ctx, e.target, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s got secret %s (err %v)", ns, e.target, err)
		}
		e.waitSA(t, ns, "default")
	}
}

func (e *psyncEnv) testUnrelatedKept(t *testing.T) {
	ctx := context.Background()
	ns := e.mkNS(t, e.prefix+"-keep", false)
	e.waitSA(t, ns, "default")
	patch := []byte(`{"imagePullSecrets":[{"name":"theirs"}]}`)
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	label := func(v *string) {
		p := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, e.label)
		if v != nil {
			p = fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, e.label, *v)
		}
		if _, err := e.cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(p), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	label(&e.tag)
	e.waitSA(t, ns, "default", "theirs", e.target)
	if _, err := e.cs.CoreV1().Secrets(ns).Get(ctx, e.target, metav1.GetOptions{}); err != nil {
		t.Fatalf("labelled namespace has no copy: %v", err)
	}
	// Leaving the selection takes back only what the controller added.
	label(nil)
	e.waitSA(t, ns, "default", "theirs")
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := e.cs.CoreV1().Secrets(ns).Get(ctx, e.target, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("the copy stayed after the namespace left the selection")
	}
}
