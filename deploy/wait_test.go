package deploy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr string
	}{
		{"auth required", http.StatusUnauthorized, ""},
		{"open registry", http.StatusOK, ""},
		{"something else on the port", http.StatusNotFound, "status 404, want 200 or 401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			client := newProbeClient()
			defer client.CloseIdleConnections()
			err := probe(context.Background(), client, srv.URL)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("probe: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("probe error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if err := probe(context.Background(), newProbeClient(), url); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("probe of a closed port = %v, want connection refused", err)
		}
	})
}

func TestDiagnosePod(t *testing.T) {
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "registry-1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
		mut(p)
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string // substrings
	}{
		{"unschedulable", pod(func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Message: `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.`}}
		}), []string{"cannot be scheduled", "unbound immediate PersistentVolumeClaims"}},
		{"image pull", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "registry", Image: "registry-kit:dev",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry-kit:dev"`}}}}
		}), []string{`container "registry" is ImagePullBackOff`, "the node cannot pull the registry-kit image", "local tag of a development build",
			"ctr -n k8s.io images import bin/image/registry-kit.tar", "registry-kit image push HOST/registry-kit:dev", "--image HOST/registry-kit:dev"}},
		{"image pull of a pushed image", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "registry", Image: "127.0.0.1:1/registry-kit:v1",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "connection refused"}}}}
		}), []string{`container "registry" is ErrImagePull`, `"127.0.0.1:1/registry-kit:v1"`, "registry-kit image push REF", "--image"}},
		{"crash loop", pod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "registry",
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
		}), []string{"CrashLoopBackOff", "last exit 1 Error", "kubectl logs --previous"}},
		{"ready", pod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Clients{Kube: fake.NewClientset()}
			got := diagnosePod(context.Background(), c, tc.pod)
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("diagnosePod of a ready pod = %q, want nothing", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("diagnosePod = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestDiagnoseClaim(t *testing.T) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "registry"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "registry.1"}, Type: corev1.EventTypeWarning,
		InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", Name: "registry", Namespace: "ns"},
		Reason:         "FailedBinding", Message: "no persistent volumes available for this claim and no storage class is set"}
	c := Clients{Kube: fake.NewClientset(pvc, ev)}
	got := strings.Join(diagnoseClaim(context.Background(), c, "ns", "registry"), "\n")
	for _, w := range []string{"persistentvolumeclaim ns/registry is Pending", "FailedBinding: no persistent volumes available", "--storage-class", "PersistentVolume"} {
		if !strings.Contains(got, w) {
			t.Errorf("diagnoseClaim = %q, want it to contain %q", got, w)
		}
	}
}

func TestLoopbackMissing(t *testing.T) {
	tests := []struct {
		name       string
		onThisNode bool
		wantPrefix string
		wantWarn   string
	}{
		{"deploy runs on the node", true, "10.200.0.1:30500", "pods use 10.200.0.1:30500 instead of localhost:30500"},
		{"deploy runs elsewhere", false, "localhost:30500", "redeploy with --pull-address 10.200.0.1:30500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Result{PushAddress: "10.200.0.1:30500", PullPrefix: "localhost:30500"}
			r.loopbackMissing(tc.onThisNode)
			if r.PullPrefix != tc.wantPrefix {
				t.Errorf("PullPrefix = %q, want %q", r.PullPrefix, tc.wantPrefix)
			}
			if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tc.wantWarn) {
				t.Errorf("Warnings = %q, want one containing %q", r.Warnings, tc.wantWarn)
			}
		})
	}
	if !isLocalAddress("127.0.0.1") || isLocalAddress("192.0.2.1") || isLocalAddress("not-an-ip") {
		t.Error("isLocalAddress misjudges 127.0.0.1, 192.0.2.1 (TEST-NET) or a non-IP")
	}
}

// TestWaitReadyReusesOneClient: the probes of one wait share one HTTP client, so 30 probes use one connection
// (each used to build its own transport: 30 connections and goroutines left behind), and the connection is closed
// when the wait ends.
func TestWaitReadyReusesOneClient(t *testing.T) {
	const notYet = 29
	var requests, conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= notYet {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	before := runtime.NumGoroutine()
	got, err := waitReady(context.Background(), Clients{}, nil, waitOptions{
		deadline: time.Now().Add(time.Minute), timeout: time.Minute, interval: time.Millisecond, report: time.Hour,
		probe: []string{srv.URL}, progress: io.Discard,
	})
	if err != nil {
		t.Fatalf("waitReady: %v", err)
	}
	if got != srv.URL {
		t.Errorf("waitReady = %q, want %q", got, srv.URL)
	}
	if n := requests.Load(); n != notYet+1 {
		t.Errorf("%d probes, want %d", n, notYet+1)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d probes opened %d connections, want 1 reused", requests.Load(), n)
	}
	// The client's connection is closed when the wait ends: no transport goroutine is left behind.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines: %d before the wait, %d after it", before, after)
	}
}
