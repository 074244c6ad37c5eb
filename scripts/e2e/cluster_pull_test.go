//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// TestPullWithSecretFromPrivateRegistry is the core story: an image pushed to a registry-kit registry with htpasswd
// auth runs on a real kubelet when the pod has a dockerconfigjson pull secret in its own namespace, and is refused
// by the registry (401, so ErrImagePull / ImagePullBackOff) without it, with the secret only in another namespace,
// and with a wrong password. Every pod pulls (imagePullPolicy Always), so the cases do not depend on their order.
func TestPullWithSecretFromPrivateRegistry(t *testing.T) {
	cs := kubeClient(t)
	reg := startServe(t)
	if reg.User == "" || reg.Password == "" {
		t.Fatalf("registry-kit serve with no htpasswd file should create user admin and write %s/admin-password", reg.DataDir)
	}
	trustRegistry(t, reg.Addr)
	ref := pushTestApp(t, reg.Addr, reg.User, reg.Password, "e2e/test-app")
	digest := ref[strings.LastIndex(ref, "@")+1:]

	t.Run("secret in the pod's namespace runs", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createSecret(t, cs, ns, dockerConfigJSONSecret("regcred", reg.Addr, reg.User, reg.Password))
		createPod(t, cs, ns, "app", ref, "regcred")
		pod := waitPodPhase(t, cs, ns, "app", corev1.PodRunning)
		if id := pod.Status.ContainerStatuses[0].ImageID; !strings.HasSuffix(id, digest) {
			t.Errorf("container image ID = %q, want the pushed digest %s", id, digest)
		}
		checkTestAppAnswers(t, pod.Status.PodIP+":8080")
	})

	denied := []struct {
		name  string
		setup func(t *testing.T, ns string) (pullSecret string)
	}{
		{
			name:  "no pull secret",
			setup: func(*testing.T, string) string { return "" },
		},
		{
			name: "secret only in another namespace",
			setup: func(t *testing.T, _ string) string {
				createSecret(t, cs, newNamespace(t), dockerConfigJSONSecret("regcred", reg.Addr, reg.User, reg.Password))
				return "regcred"
			},
		},
		{
			name: "wrong password",
			setup: func(t *testing.T, ns string) string {
				createSecret(t, cs, ns, dockerConfigJSONSecret("regcred", reg.Addr, reg.User, reg.Password+"-wrong"))
				return "regcred"
			},
		},
		{
			name: "secret for another registry",
			setup: func(t *testing.T, ns string) string {
				createSecret(t, cs, ns, dockerConfigJSONSecret("regcred", "127.0.0.1:1", reg.User, reg.Password))
				return "regcred"
			},
		},
	}
	for _, tc := range denied {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			createPod(t, cs, ns, "app", ref, tc.setup(t, ns))
			st := waitPodWaitingReason(t, cs, ns, "app", "ErrImagePull", "ImagePullBackOff")
			// The pull must fail because the registry refused the credentials, not for any other reason.
			if msgs := st.State.Waiting.Message + "\n" + podEventMessages(t, cs, ns, "app"); !strings.Contains(strings.ToLower(msgs), "401 unauthorized") {
				t.Errorf("pull failed, but not with 401 Unauthorized from the registry:\n%s", describePod(cs, ns, "app"))
			}
		})
	}
}

func createSecret(t *testing.T, cs kubernetes.Interface, ns string, s *corev1.Secret) {
	t.Helper()
	if _, err := cs.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret %s/%s: %v", ns, s.Name, err)
	}
}

// testAppPod is a pod (labelled app=NAME) with one test-app container from image, listening on 8080.
func testAppPod(name, image string, pull corev1.PullPolicy) *corev1.Pod {
	grace := int64(1)
	automount := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           image,
				ImagePullPolicy: pull,
				Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  &automount,
		},
	}
}

// createPod starts one test-app container from image, always pulled, with pullSecret ("" for none).
func createPod(t *testing.T, cs kubernetes.Interface, ns, name, image, pullSecret string) {
	t.Helper()
	pod := testAppPod(name, image, corev1.PullAlways)
	if pullSecret != "" {
		pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: pullSecret}}
	}
	createPodObject(t, cs, ns, pod)
}

func createPodObject(t *testing.T, cs kubernetes.Interface, ns string, pod *corev1.Pod) {
	t.Helper()
	if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, pod.Name, err)
	}
}

// podEventMessages joins the messages of the pod's events (for example the kubelet's "Failed to pull image").
func podEventMessages(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	events, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		t.Fatalf("listing events of pod %s/%s: %v", ns, name, err)
	}
	var msgs []string
	for _, e := range events.Items {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "\n")
}

// checkTestAppAnswers proves the test app answers at addr (host:port) from the host, for example a pod IP over the
// CNI bridge, a ClusterIP or a NodePort.
func checkTestAppAnswers(t *testing.T, addr string) {
	t.Helper()
	// A new connection per try: a Service that kube-proxy has not programmed yet must not pin a kept-alive one.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "registry-kit test app") {
			return
		}
		last = resp.Status + ": " + string(body)
	}
	t.Fatalf("test app at %s did not answer with its greeting: %s", addr, last)
}
