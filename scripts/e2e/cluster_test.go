//go:build e2e

package e2e

// Helpers for the tests that need the real local cluster started by scripts/cluster/up.sh. They find it through
// $KUBECONFIG, or else through $CLUSTER_DIR/env (CLUSTER_DIR defaults to /tmp/registry-kit-cluster), so
// `go test -tags e2e ./scripts/e2e/` works with or without `source $CLUSTER_DIR/env`.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const clusterNotRunning = "cluster not running: run scripts/cluster/up.sh"

// clusterEnvironment is what scripts/cluster/up.sh wrote to $CLUSTER_DIR/env, overridden by the process environment.
type clusterEnvironment map[string]string

var (
	clusterEnvOnce sync.Once
	clusterEnvVal  clusterEnvironment
	clusterEnvErr  error
)

// clusterEnv returns the cluster's environment, failing the test when the cluster was never started.
func clusterEnv(t testing.TB) clusterEnvironment {
	t.Helper()
	clusterEnvOnce.Do(func() { clusterEnvVal, clusterEnvErr = loadClusterEnv() })
	if clusterEnvErr != nil {
		t.Fatalf("%s (%v)", clusterNotRunning, clusterEnvErr)
	}
	return clusterEnvVal
}

func loadClusterEnv() (clusterEnvironment, error) {
	dir := os.Getenv("CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/registry-kit-cluster"
	}
	env := clusterEnvironment{"CLUSTER_DIR": dir}
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's env file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the cluster's env file: %w", err)
	}
	for k := range env {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env, nil
}

// get returns a variable the tests cannot do without.
func (e clusterEnvironment) get(t testing.TB, key string) string {
	t.Helper()
	v := e[key]
	if v == "" {
		t.Fatalf("%s is not set in %s/env: re-run scripts/cluster/up.sh", key, e["CLUSTER_DIR"])
	}
	return v
}

var (
	kubeOnce      sync.Once
	kubeClientVal kubernetes.Interface
	kubeErr       error
)

// kubeClient returns a client for the local cluster, failing the test when the cluster is not reachable.
func kubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	kubeOnce.Do(func() { kubeClientVal, kubeErr = connectCluster() })
	if kubeErr != nil {
		t.Fatalf("%s (%v)\n%s", clusterNotRunning, kubeErr, componentLogs("", 15))
	}
	return kubeClientVal
}

// componentLogs returns the last n lines of every cluster component's log under $CLUSTER_DIR/logs, keeping only
// lines that contain match when it is not empty; for failure messages.
func componentLogs(match string, n int) string {
	dir := os.Getenv("CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/registry-kit-cluster"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			if match == "" || strings.Contains(l, match) {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (last %d lines%s) ---\n", f, min(n, len(lines)), map[bool]string{true: " mentioning " + match}[match != ""])
		b.WriteString(strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n")
	}
	return b.String()
}

func connectCluster() (kubernetes.Interface, error) {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		env, err := loadClusterEnv()
		if err != nil {
			return nil, fmt.Errorf("KUBECONFIG is not set and %w", err)
		}
		path = env["KUBECONFIG"]
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating client from %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		return nil, fmt.Errorf("reaching the API server of %s: %w", path, err)
	}
	return cs, nil
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace for this test only (named after it), waits until its default ServiceAccount
// exists so pods can be created, and deletes it when the test ends (unless E2E_KEEP_NAMESPACES is set and the
// test failed, to look at it).
func newNamespace(t testing.TB) string {
	t.Helper()
	cs := kubeClient(t)
	base := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "e2e-" + base + "-" + hex.EncodeToString(suffix),
		Labels: map[string]string{"registry-kit.dev/e2e": "true"},
	}}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("E2E_KEEP_NAMESPACES") != "" {
			t.Logf("keeping namespace %s (E2E_KEEP_NAMESPACES)", ns.Name)
			return
		}
		bg := metav1.DeletePropagationBackground
		err := cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("namespace %s: default ServiceAccount did not appear within a minute (is kube-controller-manager running?)", ns.Name)
	}
	return ns.Name
}

// trustRegistry tells the node's containerd to pull from addr (host:port) over plain HTTP, through
// $CLUSTER_DIR/certs.d/<addr>/hosts.toml, which containerd reads on every pull; removed when the test ends.
func trustRegistry(t testing.TB, addr string) {
	t.Helper()
	dir := filepath.Join(clusterEnv(t).get(t, "CONTAINERD_CERTS_D"), addr)
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+addr, "http://"+addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("trusting registry %s: %v", addr, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatalf("trusting registry %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
}

// testAppImage is the test app image built by up.sh, read from its OCI layout.
func testAppImage(t testing.TB) v1.Image {
	t.Helper()
	env := clusterEnv(t)
	dir := env.get(t, "TEST_APP_OCI_LAYOUT")
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the test-app OCI layout %s: %v", dir, err)
	}
	d, err := v1.NewHash(env.get(t, "TEST_APP_IMAGE_DIGEST"))
	if err != nil {
		t.Fatalf("parsing TEST_APP_IMAGE_DIGEST: %v", err)
	}
	img, err := idx.Image(d)
	if err != nil {
		t.Fatalf("reading test-app image %s from %s: %v", d, dir, err)
	}
	return img
}

// pushTestApp pushes the test app image to registryAddr/repo:v1 over plain HTTP with Basic auth (user "" means
// anonymous) and returns its by-digest reference, host:port/repo@sha256:...
func pushTestApp(t testing.TB, registryAddr, user, pass, repo string) string {
	t.Helper()
	img := testAppImage(t)
	tag, err := name.NewTag(registryAddr+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatalf("parsing push reference for repository %q: %v", repo, err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: pass}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithAuth(auth), remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing the test app to %s: %v", tag, err) // transport errors carry no credentials
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of the test app image: %v", err)
	}
	return tag.Context().Digest(d.String()).String()
}

// dockerConfigJSONSecret builds a kubernetes.io/dockerconfigjson Secret by hand, the way
// `kubectl create secret docker-registry` does, independently of the project's own builder.
func dockerConfigJSONSecret(name, server, user, pass string) *corev1.Secret {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	payload, _ := json.Marshal(map[string]map[string]entry{"auths": {server: {
		Username: user, Password: pass, Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
	}}})
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: payload},
	}
}

// podTimeout bounds every wait on a pod; pulls from a loopback registry take seconds.
const podTimeout = 2 * time.Minute

// waitPodPhase waits until the pod reaches phase, failing with the pod's status and events otherwise.
func waitPodPhase(t testing.TB, cs kubernetes.Interface, ns, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	return waitPod(t, cs, ns, name, fmt.Sprintf("phase %s", phase), func(p *corev1.Pod) bool { return p.Status.Phase == phase })
}

// waitPodWaitingReason waits until a container of the pod is waiting with one of reasons (for example
// ErrImagePull, ImagePullBackOff) and returns that container's status.
func waitPodWaitingReason(t testing.TB, cs kubernetes.Interface, ns, name string, reasons ...string) corev1.ContainerStatus {
	t.Helper()
	var found corev1.ContainerStatus
	waitPod(t, cs, ns, name, "a container waiting with reason "+strings.Join(reasons, " or "), func(p *corev1.Pod) bool {
		for _, c := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
			if c.State.Waiting != nil && slices.Contains(reasons, c.State.Waiting.Reason) {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

func waitPod(t testing.TB, cs kubernetes.Interface, ns, name, want string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, podTimeout, true, func(ctx context.Context) (bool, error) {
		pod, lastErr = cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return lastErr == nil && done(pod), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: no %s within %s (last error: %v)\n%s%s", ns, name, want, podTimeout, lastErr,
			describePod(cs, ns, name), componentLogs(ns+"/"+name, 20))
	}
	return pod
}

// describePod summarises a pod's status and events for failure messages.
func describePod(cs kubernetes.Interface, ns, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		fmt.Fprintf(&b, "getting pod: %v\n", err)
	} else {
		fmt.Fprintf(&b, "phase %s, node %q, reason %q, message %q\n", pod.Status.Phase, pod.Spec.NodeName, pod.Status.Reason, pod.Status.Message)
		for _, c := range pod.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
		for _, c := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
			switch s := c.State; {
			case s.Waiting != nil:
				fmt.Fprintf(&b, "  container %s: waiting %s: %s\n", c.Name, s.Waiting.Reason, s.Waiting.Message)
			case s.Running != nil:
				fmt.Fprintf(&b, "  container %s: running since %s (image %s)\n", c.Name, s.Running.StartedAt, c.ImageID)
			case s.Terminated != nil:
				fmt.Fprintf(&b, "  container %s: terminated %s exit %d: %s\n", c.Name, s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message)
			}
		}
	}
	events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		fmt.Fprintf(&b, "listing events: %v\n", err)
		return b.String()
	}
	for _, e := range events.Items {
		fmt.Fprintf(&b, "  event %s %s (x%d): %s\n", e.Type, e.Reason, e.Count, e.Message)
	}
	return b.String()
}
