//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// TestClusterNetworking checks what the cluster promises the other e2e tests: pods reach the API server through the
// kubernetes Service and a host service bound to the node IP, and the host reaches pods through a ClusterIP and a
// NodePort on the node IP. It uses the test-app image up.sh imported into the node (never pulled).
func TestClusterNetworking(t *testing.T) {
	cs := kubeClient(t)
	env := clusterEnv(t)
	nodeIP, image := env.get(t, "CLUSTER_NODE_IP"), env.get(t, "TEST_APP_IMAGE")
	ns := newNamespace(t)

	l, err := net.Listen("tcp", net.JoinHostPort(nodeIP, "0"))
	if err != nil {
		t.Fatalf("listening on the node IP %s (is it on lo? run scripts/cluster/up.sh): %v", nodeIP, err)
	}
	hostSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello from the host")
	})}
	go func() { _ = hostSrv.Serve(l) }()
	t.Cleanup(func() { _ = hostSrv.Close() })

	for _, tc := range []struct{ name, pod, url, want string }{
		{"pod reaches the API server through the kubernetes Service", "fetch-api", "https://10.0.0.1/version", `"major": "1"`},
		{"pod reaches a host service on the node IP", "fetch-host", "http://" + l.Addr().String() + "/", "hello from the host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := runFetchPod(t, cs, ns, tc.pod, image, "-insecure", tc.url); !strings.Contains(out, "200 OK") || !strings.Contains(out, tc.want) {
				t.Errorf("fetch %s from a pod printed:\n%s\nwant 200 OK and %q", tc.url, out, tc.want)
			}
		})
	}

	t.Run("host reaches a pod through ClusterIP and NodePort", func(t *testing.T) {
		pod := testAppPod("web", image, corev1.PullNever)
		createPodObject(t, cs, ns, pod)
		waitPodPhase(t, cs, ns, "web", corev1.PodRunning)
		svc, err := cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeNodePort,
				Selector: pod.Labels,
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating service: %v", err)
		}
		checkTestAppAnswers(t, svc.Spec.ClusterIP+":80")
		checkTestAppAnswers(t, fmt.Sprintf("%s:%d", nodeIP, svc.Spec.Ports[0].NodePort))
	})
}

// runFetchPod runs `test-app fetch ARGS...` in a pod to completion and returns what it printed.
func runFetchPod(t *testing.T, cs kubernetes.Interface, ns, name, image string, args ...string) string {
	t.Helper()
	pod := testAppPod(name, image, corev1.PullNever)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers[0].Command = append([]string{"/test-app", "fetch"}, args...)
	createPodObject(t, cs, ns, pod)
	done := waitPod(t, cs, ns, name, "completion", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading logs of pod %s/%s: %v", ns, name, err)
	}
	if done.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("pod %s/%s running fetch %s failed:\n%s\n%s", ns, name, strings.Join(args, " "), out, describePod(cs, ns, name))
	}
	return string(out)
}
