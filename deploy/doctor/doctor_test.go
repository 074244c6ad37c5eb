package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

const (
	testUser = "alice"
	testPass = "s3cret-Pa55word" // asserted never to appear in any output
)

// basicAuthRegistry serves go-containerregistry's in-process registry behind Basic auth on 127.0.0.1 and pushes
// app:v1 to it. It returns the registry's host:port.
func basicAuthRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: testUser, Password: testPass})); err != nil {
		t.Fatalf("pushing test image: %v", err)
	}
	return host
}

func pullSecret(t *testing.T, ns, nm, server, user, pass string) *corev1.Secret {
	t.Helper()
	b, err := dockerconfig.Build(dockerconfig.Entry{Server: server, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: nm}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: b}}
}

type podOpt func(*corev1.Pod)

func withSecrets(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
	}
}

func running(p *corev1.Pod) {
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ImageID: "sha256:abc",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
}

func backOff(msg string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}}}}
	}
}

func testPod(image string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "uid-web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	if len(opts) == 0 {
		opts = []podOpt{backOff("")}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func defaultSA(ns string, secrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	for _, s := range secrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return sa
}

// TestRunCauses builds each broken situation against a real in-process registry (Basic auth) and checks that doctor
// names that cause and no other, and never prints the password.
func TestRunCauses(t *testing.T) {
	host := basicAuthRegistry(t)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors doctor causes on purpose
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")
	good := func(ns string) *corev1.Secret { return pullSecret(t, ns, "regcred", host, testUser, testPass) }

	cases := []struct {
		name    string
		objs    []runtime.Object
		opts    Options
		want    []Cause
		summary string
		texts   []string // must appear in the human output
		absent  []string // must not appear in it
	}{
		{name: "healthy pod pulls fine", want: nil, summary: "pulls fine",
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), running), good("team"), defaultSA("team")}},
		{name: "healthy but still pending", want: nil, summary: "no problem found: the image should pull",
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), func(*corev1.Pod) {}), good("team"), defaultSA("team")}},
		{name: "secret only in another namespace", want: []Cause{CauseSecretMissing},
			objs:   []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), good("other"), defaultSA("team")},
			texts:  []string{`a secret of that name exists elsewhere, in namespace(s) other`, `create one in "team"`, "registry-kit pull-secret create regcred --server " + host},
			absent: []string{"kubectl get secret", "jq", "kubectl apply"}},
		{name: "an extra missing secret is not the cause when another secret matches", want: []Cause{CauseConnectionRefused},
			objs: []runtime.Object{testPod(closed+"/app:v1", withSecrets("regcred", "gone"), backOff("")), defaultSA("team"),
				pullSecret(t, "team", "regcred", closed, testUser, testPass)},
			texts: []string{"! WARN  namespace-alignment", "(not needed for this image: another pull secret has an entry for " + closed + ")"}},
		{name: "secret of wrong type", want: []Cause{CauseSecretType},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"),
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "regcred"}, Type: corev1.SecretTypeOpaque,
					Data: good("team").Data}}},
		{name: "malformed dockerconfigjson", want: []Cause{CauseSecretMalformed},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"),
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
					Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + host + `":{"password":"` + testPass + `"`)}}},
			texts: []string{"invalid JSON"}},
		{name: "dockercfg payload in a dockerconfigjson secret", want: []Cause{CauseSecretMalformed},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"),
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
					Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"` + host + `":{"username":"` + testUser + `","password":"` + testPass + `"}}`)}}},
			texts: []string{`no "auths" object`}},
		{name: "docker hub server given by mistake", want: []Cause{CauseNoCredentials},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"),
				pullSecret(t, "team", "regcred", dockerconfig.DockerHubKey, testUser, testPass)},
			texts: []string{"https://index.docker.io/v1/", "--server " + host}},
		{name: "no pull secret at all", want: []Cause{CauseNoCredentials},
			objs: []runtime.Object{testPod(host+"/app:v1", backOff("")), defaultSA("team")}},
		{name: "wrong password", want: []Cause{CauseCredentialsRejected},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"),
				pullSecret(t, "team", "regcred", host, testUser, "wrong-"+testPass)}},
		{name: "tag not found", want: []Cause{CauseImageNotFound},
			objs: []runtime.Object{testPod(host+"/app:nope", withSecrets("regcred"), backOff("")), good("team"), defaultSA("team")}},
		{name: "no registry host", want: []Cause{CauseNoRegistryHost},
			objs: []runtime.Object{testPod("app:v1", withSecrets("regcred"), backOff("")), good("team"), defaultSA("team")}},
		{name: "serviceaccount patched after pod creation", want: []Cause{CauseServiceAccountDrift},
			objs:  []runtime.Object{testPod(host+"/app:v1", backOff("")), good("team"), defaultSA("team", "regcred")},
			texts: []string{"recreate the pod"}},
		{name: "connection refused", want: []Cause{CauseConnectionRefused},
			objs: []runtime.Object{testPod(closed+"/app:v1", backOff("")), defaultSA("team")}},
		{name: "host does not resolve", want: []Cause{CauseDNS},
			objs: []runtime.Object{testPod("registry.doctor-test.onion:5000/app:v1", backOff("")), defaultSA("team")}},
		{name: "untrusted certificate", want: []Cause{CauseTLSUntrusted},
			objs: []runtime.Object{testPod(tlsHost+"/app:v1", backOff("")), defaultSA("team")}},
		{name: "offline: cause from the kubelet's text", opts: Options{Offline: true}, want: []Cause{CauseNoCredentials},
			objs: []runtime.Object{testPod(host+"/app:v1", backOff(`Back-off pulling image "`+host+`/app:v1": ErrImagePull: pulling from host `+host+` failed with status code [manifests v1]: 401 Unauthorized`)), defaultSA("team")}},
		{name: "node disagrees with doctor: event names the cause", want: []Cause{CauseTLSUntrusted},
			objs: []runtime.Object{testPod(host+"/app:v1", withSecrets("regcred"), backOff(`Back-off pulling image "`+host+`/app:v1": ErrImagePull: tls: failed to verify certificate: x509: certificate signed by unknown authority`)), good("team"), defaultSA("team")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(c.objs...)
			c.opts.Timeout = 5 * time.Second
			rep, err := Run(context.Background(), cs, Target{Namespace: "team", Pod: "web"}, c.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			out := render(t, rep)
			if diff := cmp.Diff(c.want, rep.Causes()); diff != "" {
				t.Errorf("causes (-want +got):\n%s\n%s", diff, out)
			}
			if got := rep.Problems(); got != (len(c.want) > 0) {
				t.Errorf("Problems() = %v, want %v\n%s", got, len(c.want) > 0, out)
			}
			if c.summary != "" && rep.Pods[0].Images[0].Summary != c.summary {
				t.Errorf("summary = %q, want %q", rep.Pods[0].Images[0].Summary, c.summary)
			}
			for _, s := range c.texts {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range c.absent {
				if strings.Contains(out, s) {
					t.Errorf("output contains %q:\n%s", s, out)
				}
			}
			js, _ := json.Marshal(rep)
			if strings.Contains(out, testPass) || strings.Contains(string(js), testPass) {
				t.Error("the report contains the password")
			}
		})
	}
}

func render(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRunTargets checks which pods each kind of target selects.
func TestRunTargets(t *testing.T) {
	host := basicAuthRegistry(t)
	mk := func(nm string, labels map[string]string, opt podOpt) *corev1.Pod {
		p := testPod(host+"/app:v1", withSecrets("regcred"), opt)
		p.Name, p.UID, p.Labels = nm, types.UID("uid-"+nm), labels
		return p
	}
	objs := []runtime.Object{
		mk("web-a", map[string]string{"app": "web"}, backOff("")),
		mk("web-b", map[string]string{"app": "web"}, running),
		mk("db", map[string]string{"app": "db"}, running),
		&appsDeployment, pullSecret(t, "team", "regcred", host, testUser, testPass), defaultSA("team"),
	}
	cases := []struct {
		name   string
		target Target
		want   []string
	}{
		{"pod", Target{Namespace: "team", Pod: "db"}, []string{"db"}},
		{"deployment", Target{Namespace: "team", Deployment: "web"}, []string{"web-a", "web-b"}},
		{"failing pods of the namespace", Target{Namespace: "team"}, []string{"web-a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Run(context.Background(), fake.NewClientset(objs...), c.target, Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range rep.Pods {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
	if _, err := Run(context.Background(), fake.NewClientset(objs...), Target{Namespace: "team", Pod: "nope"}, Options{}); err == nil ||
		!strings.Contains(err.Error(), `getting pod "nope" in namespace "team"`) {
		t.Errorf("missing pod: err = %v", err)
	}
}

// TestRunNoClusterWideRBAC checks that a forbidden cluster-wide secret list degrades to a note.
func TestRunNoClusterWideRBAC(t *testing.T) {
	host := basicAuthRegistry(t)
	cs := fake.NewClientset(testPod(host+"/app:v1", withSecrets("regcred"), backOff("")), defaultSA("team"))
	cs.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
	})
	rep, err := Run(context.Background(), cs, Target{Namespace: "team", Pod: "web"}, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Cause{CauseSecretMissing}, rep.Causes()); diff != "" {
		t.Error(diff)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "cannot list secrets across namespaces") {
		t.Errorf("notes = %q", rep.Notes)
	}
}
