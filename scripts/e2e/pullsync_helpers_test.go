//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/registry-kit/registry-kit/internal/lockedbuf"
)

// syncProc is one `registry-kit pull-secret sync` replica running on the host with the cluster's kubeconfig.
type syncProc struct {
	id, addr string
	cmd      *exec.Cmd
	log      *lockedbuf.Buffer
	exited   chan struct{}
}

// startSync starts a replica and waits until its /healthz answers 200 (caches synced); it is stopped when the
// test ends, and its output printed if the test failed (it never prints a Secret's content).
func startSync(t *testing.T, kubeconfig, id string, args ...string) *syncProc {
	t.Helper()
	p := &syncProc{id: id, addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), log: &lockedbuf.Buffer{}, exited: make(chan struct{})}
	full := append([]string{"pull-secret", "sync", "--kubeconfig", kubeconfig, "--identity", id, "--listen", p.addr}, args...)
	p.cmd = exec.Command(binary(t), full...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pull-secret sync %s: %v", id, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pull-secret sync %s output:\n%s", id, p.log.String())
		}
	})
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("exited")
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("pull-secret sync %s did not become healthy: %v\n%s", id, err, p.log.String())
	}
	return p
}

func (p *syncProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// kill ends the replica with SIGKILL, as a crashed node would: it releases nothing.
func (p *syncProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// leaseHolder returns the Lease's holder identity ("" if none yet).
func leaseHolder(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// saTimes records, from an informer on every ServiceAccount named default, when each one was first seen and when it
// first listed the pull secret.
type saTimes struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	patched map[string]time.Time
	events  int
}

func watchDefaultSAs(t *testing.T, secret string) *saTimes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// An informer, not a bare watch: a watch from "now" can end at once ("Too large resource version") on a
	// busy API server, and the informer lists and watches again.
	factory := informers.NewSharedInformerFactoryWithOptions(watchClient(t), 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=default"
	}))
	s := &saTimes{seen: map[string]time.Time{}, patched: map[string]time.Time{}}
	record := func(obj any) {
		sa, ok := obj.(*corev1.ServiceAccount)
		if !ok {
			return
		}
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.events++
		if _, ok := s.seen[sa.Namespace]; !ok {
			s.seen[sa.Namespace] = now
		}
		has := slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secret })
		if _, ok := s.patched[sa.Namespace]; !ok && has {
			s.patched[sa.Namespace] = now
		}
	}
	inf := factory.Core().V1().ServiceAccounts().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the ServiceAccount informer did not sync")
	}
	return s
}

// watchClient is a client for the cluster without the request timeout kubeClient sets (which would end a watch).
func watchClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", clusterEnv(t).get(t, "KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (s *saTimes) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d informer events, %d service accounts seen, %d patched", s.events, len(s.seen), len(s.patched))
}

func (s *saTimes) get(ns string) (seen, patched time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[ns], s.patched[ns]
}

// appDeployment runs one test-app pod from image through the namespace's default ServiceAccount, naming no pull
// secret itself.
func appDeployment(app, image string) *appsv1.Deployment {
	pod := testAppPod(app, image, corev1.PullAlways)
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
}

// deleteNamespaces deletes the namespaces when the test ends.
func deleteNamespacesAtEnd(t *testing.T, cs kubernetes.Interface, names *[]string) {
	t.Cleanup(func() {
		bg := metav1.DeletePropagationBackground
		for _, ns := range *names {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{PropagationPolicy: &bg})
		}
	})
}
