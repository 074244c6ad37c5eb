package syncer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func holder(cs kubernetes.Interface) string {
	l, err := cs.CoordinationV1().Leases(srcNS).Get(context.Background(), "sync", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestRunLeaderHandoff: of two replicas on one Lease only the holder reconciles; when it stops (releasing the
// Lease) the other takes over and handles a namespace created meanwhile. /healthz and /metrics answer.
func TestRunLeaderHandoff(t *testing.T) {
	cs := fake.NewClientset(source("pw1"))
	start := func(id string) (cancel func() error, addr string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, cs, baseConfig(), RunOptions{
				Options:        Options{Recorder: record.NewFakeRecorder(100)},
				LeaseNamespace: srcNS, LeaseName: "sync", Identity: id,
				LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond,
				Listener: l,
			})
		}()
		return func() error { stop(); return <-done }, l.Addr().String()
	}
	waitHolder := func(want string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return holder(cs) == want, nil
		})
		if err != nil {
			t.Fatalf("lease holder %q, want %q", holder(cs), want)
		}
	}
	stopA, addrA := start("a")
	waitHolder("a")
	stopB, _ := start("b")
	t.Cleanup(func() { _ = stopB() })

	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "registry_kit_pull_secret_sync_leader 1"} {
		var body string
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			resp, err := http.Get("http://" + addrA + path)
			if err != nil {
				return false, nil
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			return resp.StatusCode == http.StatusOK && strings.Contains(body, want), nil
		})
		if err != nil {
			t.Errorf("GET %s: no %q in:\n%s", path, want, body)
		}
	}

	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("one", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "one", nsState{Secret: "copy:pw1", Accounts: map[string]string{}})

	if err := stopA(); err != nil && !errors.Is(err, ErrLostLeadership) {
		t.Fatalf("replica a: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("two", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHolder("b")
	waitState(t, cs, "two", nsState{Secret: "copy:pw1", Accounts: map[string]string{}})
}
