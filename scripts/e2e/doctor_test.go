//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/deploy/doctor"
)

// doctorPushRandom pushes a small random image to addr/doctor/app:v1 with Basic credentials, which
// go-containerregistry exchanges for a Bearer token when the registry asks for one.
func doctorPushRandom(t *testing.T, addr, user, pass string) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(addr+"/doctor/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing to %s: %v", tag, err)
	}
}

// doctorProbeCases runs doctor's live checks against a real registry at addr, with the pod side from a fake
// clientset: right credentials, a wrong password, no pull secret, a tag that does not exist.
func doctorProbeCases(t *testing.T, addr, user, pass string) {
	pod := func(image string, secret bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "u1"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}} // not pulled yet
		if secret {
			p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		}
		return p
	}
	secret := func(pw string) *corev1.Secret {
		s := dockerConfigJSONSecret("regcred", addr, user, pw)
		s.Namespace = "team"
		return s
	}
	cases := []struct {
		name string
		objs []runtime.Object
		want []doctor.Cause
	}{
		{"right credentials", []runtime.Object{pod(addr+"/doctor/app:v1", true), secret(pass)}, nil},
		{"wrong password", []runtime.Object{pod(addr+"/doctor/app:v1", true), secret("not-" + pass)}, []doctor.Cause{doctor.CauseCredentialsRejected}},
		{"no pull secret", []runtime.Object{pod(addr+"/doctor/app:v1", false)}, []doctor.Cause{doctor.CauseNoCredentials}},
		{"tag not found", []runtime.Object{pod(addr+"/doctor/app:nope", true), secret(pass)}, []doctor.Cause{doctor.CauseImageNotFound}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := doctor.Run(context.Background(), fake.NewClientset(c.objs...), doctor.Target{Namespace: "team", Pod: "web"},
				doctor.Options{Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			_ = doctor.WriteText(&out, rep)
			if strings.Contains(out.String(), pass) {
				t.Fatal("the report contains the password")
			}
			if diff := cmp.Diff(c.want, rep.Causes()); diff != "" {
				t.Errorf("causes (-want +got):\n%s\n%s", diff, out.String())
			}
			if c.want == nil && !strings.Contains(out.String(), "exists (sha256:") {
				t.Errorf("the manifest was not checked live:\n%s", out.String())
			}
		})
	}
}

// TestDoctorProbesTokenRegistry: stock distribution with `auth: token`, so the Bearer challenge and the token
// exchange are real.
func TestDoctorProbesTokenRegistry(t *testing.T) {
	tr := startTokenRegistry(t)
	doctorPushRandom(t, tr.Addr, tr.User, tr.Pass)
	doctorProbeCases(t, tr.Addr, tr.User, tr.Pass)
}

// TestDoctorProbesRegistryKit: registry-kit serve with its generated admin (Basic auth).
func TestDoctorProbesRegistryKit(t *testing.T) {
	s := startServe(t)
	if s.User == "" {
		t.Fatal("registry-kit serve created no admin user")
	}
	doctorPushRandom(t, s.Addr, s.User, s.Password)
	doctorProbeCases(t, s.Addr, s.User, s.Password)
}

// doctorResult is what `registry-kit doctor -o json` printed and how it exited.
type doctorResult struct {
	report doctor.Report
	out    string
	exit   int
}

// runDoctorBinary runs the real binary against the local cluster.
func runDoctorBinary(t *testing.T, args ...string) doctorResult {
	t.Helper()
	kc := clusterEnv(t).get(t, "KUBECONFIG")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), append([]string{"doctor", "--kubeconfig", kc, "-o", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := doctorResult{out: stdout.String() + stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running doctor: %v", err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &res.report); err != nil {
		t.Fatalf("doctor -o json printed no report (%v):\n%s", err, res.out)
	}
	return res
}

// textReport renders the JSON report back as text, for failure messages.
func (r doctorResult) text() string {
	var b bytes.Buffer
	_ = doctor.WriteText(&b, &r.report)
	return b.String()
}

// assertCauses checks that doctor named exactly want (and exited accordingly).
func assertCauses(t *testing.T, r doctorResult, want ...doctor.Cause) {
	t.Helper()
	got := r.report.Causes()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("causes (-want +got):\n%s\nreport:\n%s", diff, r.text())
	}
	if wantExit := map[bool]int{true: 1, false: 0}[len(want) > 0]; r.exit != wantExit {
		t.Errorf("exit code %d, want %d\n%s", r.exit, wantExit, r.out)
	}
	if !slices.Equal(want, got) {
		return
	}
	if len(want) == 0 && !strings.Contains(r.text(), "pulls fine") {
		t.Errorf("a healthy pod is not reported as pulling fine:\n%s", r.text())
	}
}

// doctorCertsD writes $CONTAINERD_CERTS_D/<host>/hosts.toml, which the node's containerd reads on every pull, and
// removes it when the test ends.
func doctorCertsD(t *testing.T, host, hostsToml string) {
	t.Helper()
	dir := filepath.Join(clusterEnv(t).get(t, "CONTAINERD_CERTS_D"), host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hostsToml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
}

// httpsOnly is a hosts.toml telling containerd to speak HTTPS to addr, verifying its certificate with the system
// roots: a node that was never told the registry is plain HTTP or has its own CA.
func httpsOnly(addr string) string {
	return fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "https://"+addr, "https://"+addr)
}

// proxyTo serves a reverse proxy to the registry at target on a new 127.0.0.1 port, over TLS (httptest's own CA,
// which no node trusts) or plain HTTP, and returns its host:port.
func proxyTo(t *testing.T, target string, useTLS bool) string {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(u))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the node's failed handshakes are the point of the test
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// silentListener accepts TCP connections on 127.0.0.1 and never answers, like a registry behind a black hole.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				<-done
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { l.Close(); close(done) })
	return l.Addr().String()
}

func doctorClosedPort(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

type doctorPodSpec struct {
	image   string
	secrets []string
	sa      string
}

// doctorPod creates a pod that always pulls spec.image.
func doctorPod(t *testing.T, cs kubernetes.Interface, ns string, spec doctorPodSpec) string {
	t.Helper()
	grace, automount := int64(1), false
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "app", Image: spec.image, ImagePullPolicy: corev1.PullAlways}},
		ServiceAccountName:            spec.sa,
		TerminationGracePeriodSeconds: &grace, AutomountServiceAccountToken: &automount,
	}}
	for _, s := range spec.secrets {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod in %s: %v", ns, err)
	}
	return pod.Name
}

// waitPullFailure waits until the pod really is in ErrImagePull/ImagePullBackOff and the kubelet's "Failed" event
// with the pull error exists, and logs that text (the source of testdata/kubelet-events.txt).
func waitPullFailure(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	waitPodWaitingReason(t, cs, ns, name, "ErrImagePull", "ImagePullBackOff")
	var msg string
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, nil
		}
		for _, e := range list.Items {
			if e.Reason == "Failed" && strings.Contains(e.Message, "Failed to pull image") {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no kubelet pull-failure event for %s/%s:\n%s", ns, name, describePod(cs, ns, name))
	}
	t.Logf("kubelet event (%s): %s", doctor.ClassifyEvent(msg), msg)
}

func createDoctorSecret(t *testing.T, cs kubernetes.Interface, ns string, s *corev1.Secret) {
	t.Helper()
	s = s.DeepCopy()
	s.Namespace = ns
	if _, err := cs.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret %s/%s: %v", ns, s.Name, err)
	}
}

// TestDoctorCluster creates each broken situation for real on the local cluster (the pod really is in
// ErrImagePull/ImagePullBackOff), runs the registry-kit binary's doctor on it, and checks that doctor names that
// cause and no other; and one healthy pod that doctor says pulls fine.
func TestDoctorCluster(t *testing.T) {
	cs := kubeClient(t)
	s := startServe(t)
	trustRegistry(t, s.Addr)
	pushTestApp(t, s.Addr, s.User, s.Password, "doctor/app")
	image := s.Addr + "/doctor/app:v1"
	good := dockerConfigJSONSecret("regcred", s.Addr, s.User, s.Password)

	t.Run("healthy pod pulls fine", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, good)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"regcred"}})
		waitPodPhase(t, cs, ns, pod, corev1.PodRunning)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns))
	})
	t.Run("secret in another namespace", func(t *testing.T) {
		t.Parallel()
		ns, other := newNamespace(t), newNamespace(t)
		elsewhere := good.DeepCopy()
		elsewhere.Name = "regcred-" + other // a name no other test uses, so doctor can list exactly where it is
		createDoctorSecret(t, cs, other, elsewhere)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{elsewhere.Name}})
		waitPullFailure(t, cs, ns, pod)
		r := runDoctorBinary(t, pod, "-n", ns)
		assertCauses(t, r, doctor.CauseSecretMissing)
		if !strings.Contains(r.text(), "a secret of that name exists elsewhere, in namespace(s) "+other+",") {
			t.Errorf("doctor does not say the secret exists in %s:\n%s", other, r.text())
		}
		// The secret elsewhere may be someone else's: doctor recommends creating one, never copying it.
		if !strings.Contains(r.text(), "registry-kit pull-secret create "+elsewhere.Name) || strings.Contains(r.text(), "kubectl get secret") {
			t.Errorf("doctor does not recommend `registry-kit pull-secret create` alone:\n%s", r.text())
		}
	})
	t.Run("pod that does not exist: could not run, exit 2", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		cmd := exec.Command(binary(t), "doctor", "--kubeconfig", clusterEnv(t).get(t, "KUBECONFIG"), "-n", ns, "no-such-pod")
		out, err := cmd.CombinedOutput()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
			t.Errorf("doctor of a missing pod: %v, want exit status 2\n%s", err, out)
		}
		if !strings.Contains(string(out), "no-such-pod") {
			t.Errorf("doctor of a missing pod does not name it:\n%s", out)
		}
	})
	t.Run("secret of the wrong type", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		opaque := good.DeepCopy()
		opaque.Type = corev1.SecretTypeOpaque
		createDoctorSecret(t, cs, ns, opaque)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseSecretType)
	})
	t.Run("dockercfg payload in a dockerconfigjson secret", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		bad := good.DeepCopy()
		var payload struct{ Auths map[string]json.RawMessage }
		_ = json.Unmarshal(good.Data[corev1.DockerConfigJsonKey], &payload)
		bad.Data[corev1.DockerConfigJsonKey], _ = json.Marshal(payload.Auths) // no "auths" wrapper: valid JSON the API accepts
		createDoctorSecret(t, cs, ns, bad)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseSecretMalformed)
	})
	t.Run("docker hub server given by mistake", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, dockerConfigJSONSecret("regcred", "https://index.docker.io/v1/", s.User, s.Password))
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		r := runDoctorBinary(t, pod, "-n", ns)
		assertCauses(t, r, doctor.CauseNoCredentials)
		if !strings.Contains(r.text(), "--server "+s.Addr) {
			t.Errorf("the fix does not name the registry host:\n%s", r.text())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, dockerConfigJSONSecret("regcred", s.Addr, s.User, "not-"+s.Password))
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		r := runDoctorBinary(t, pod, "-n", ns)
		assertCauses(t, r, doctor.CauseCredentialsRejected)
		// The same diagnosis when doctor finds the namespace's failing pods itself.
		all := runDoctorBinary(t, "-n", ns)
		assertCauses(t, all, doctor.CauseCredentialsRejected)
		if len(all.report.Pods) != 1 || all.report.Pods[0].Name != pod {
			t.Errorf("namespace-wide doctor diagnosed %d pods, want just %s:\n%s", len(all.report.Pods), pod, all.text())
		}
		for _, out := range []string{r.out, all.out} {
			if strings.Contains(out, s.Password) {
				t.Error("doctor printed the password")
			}
		}
	})
	t.Run("tag not found", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, good)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: s.Addr + "/doctor/app:nope", secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseImageNotFound)
	})
	t.Run("no registry host", func(t *testing.T) {
		t.Parallel()
		// Docker Hub is unreachable here; point the node's docker.io at a closed loopback port so the kubelet's
		// attempt fails without leaving the machine.
		closed := "http://" + doctorClosedPort(t)
		doctorCertsD(t, "docker.io", fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", closed, closed))
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, good)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: "doctor/app:v1", secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseNoRegistryHost)
	})
	t.Run("serviceaccount patched after the pod was created", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, good)
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: image, sa: "builder"})
		waitPullFailure(t, cs, ns, pod)
		patch := []byte(`{"imagePullSecrets":[{"name":"regcred"}]}`)
		if _, err := cs.CoreV1().ServiceAccounts(ns).Patch(context.Background(), "builder", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		r := runDoctorBinary(t, pod, "-n", ns)
		assertCauses(t, r, doctor.CauseServiceAccountDrift)
		if !strings.Contains(r.text(), "recreate the pod") {
			t.Errorf("doctor does not say to recreate the pod:\n%s", r.text())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: doctorClosedPort(t) + "/doctor/app:v1"})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseConnectionRefused)
	})
	t.Run("registry does not answer", func(t *testing.T) {
		t.Parallel()
		addr := silentListener(t)
		doctorCertsD(t, addr, httpsOnly(addr)) // containerd gives up on the TLS handshake after 10s
		ns := newNamespace(t)
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: addr + "/doctor/app:v1"})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns, "--timeout", "3s"), doctor.CauseTimeout)
	})
	t.Run("host does not resolve", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		// .onion names are never sent to DNS by Go's resolver (RFC 7686): the lookup fails on the machine itself.
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: "registry.doctor-e2e.onion:5000/doctor/app:v1"})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseDNS)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		addr := proxyTo(t, s.Addr, true)
		doctorCertsD(t, addr, httpsOnly(addr))
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, dockerConfigJSONSecret("regcred", addr, s.User, s.Password))
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: addr + "/doctor/app:v1", secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseTLSUntrusted)
	})
	t.Run("https expected, http served", func(t *testing.T) {
		t.Parallel()
		addr := proxyTo(t, s.Addr, false)
		doctorCertsD(t, addr, httpsOnly(addr))
		ns := newNamespace(t)
		createDoctorSecret(t, cs, ns, dockerConfigJSONSecret("regcred", addr, s.User, s.Password))
		pod := doctorPod(t, cs, ns, doctorPodSpec{image: addr + "/doctor/app:v1", secrets: []string{"regcred"}})
		waitPullFailure(t, cs, ns, pod)
		assertCauses(t, runDoctorBinary(t, pod, "-n", ns), doctor.CauseHTTPServed)
	})
}

// TestDoctorExitStatus: the real binary exits 2 when doctor cannot run (a bad flag, an API server that is down), so
// scripts tell that apart from 1, a problem found (TestDoctorCluster checks 0 and 1 against real pods).
func TestDoctorExitStatus(t *testing.T) {
	dir := t.TempDir()
	down := filepath.Join(dir, "down.kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:%d'}\n"+
		"users:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n  context: {cluster: c, user: u, namespace: team}\ncurrent-context: c\n", freePort(t))
	if err := os.WriteFile(down, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"bad flag value", []string{"doctor", "-o", "yaml"}},
		{"unknown flag", []string{"doctor", "--no-such-flag"}},
		{"API server down", []string{"doctor", "web", "--kubeconfig", down}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(binary(t), tc.args...).CombinedOutput()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
				t.Errorf("registry-kit %s: %v, want exit status 2\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}
