package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/registry-kit/registry-kit/deploy/doctor"
)

func runDoctor(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"doctor"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDoctorFlagErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad output", []string{"-o", "yaml"}, `--output "yaml": must be text or json`},
		{"bad timeout", []string{"--timeout", "0s"}, `--timeout 0s: must be positive`},
		{"insecure registry with scheme", []string{"--insecure-registry", "http://reg:5000"}, `--insecure-registry "http://reg:5000"`},
		{"ca file without PEM", []string{"--ca-file", notPEM}, "no PEM certificate in it"},
		{"bad target kind", []string{"service/web", "-n", "team", "--kubeconfig", writeKubeconfig(t, "http://127.0.0.1:1")}, `kind "service" is not pod or deployment`},
		{"two targets", []string{"a", "b"}, "accepts at most 1 arg"},
		{"unknown flag", []string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"cluster not answering", []string{"web", "--kubeconfig", writeKubeconfig(t, "http://127.0.0.1:1")}, "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runDoctor(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, c.wantErr)
			}
			if got := ExitCode(err); got != ExitCannotRun {
				t.Errorf("exit code %d, want %d (could not run)", got, ExitCannotRun)
			}
		})
	}
}

func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: test}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team}}]
current-context: c
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeAPIServer answers the few reads doctor makes about one failing pod, over real HTTP.
func fakeAPIServer(t *testing.T) string {
	t.Helper()
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "u1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "127.0.0.1:5000/app:v1"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}}}
	events := corev1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "v1"}, Items: []corev1.Event{{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "team", Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", UID: "u1"}, Reason: "Failed",
		Message: `Failed to pull image "127.0.0.1:5000/app:v1": failed to pull and unpack image "127.0.0.1:5000/app:v1": failed to resolve reference "127.0.0.1:5000/app:v1": pulling from host 127.0.0.1:5000 failed with status code [manifests v1]: 401 Unauthorized`,
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/namespaces/team/pods/web":
			_ = json.NewEncoder(w).Encode(pod)
		case "/api/v1/namespaces/team/events":
			_ = json.NewEncoder(w).Encode(events)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDoctorCommand runs the command against a fake API server over HTTP, offline, and checks the report and the
// non-zero exit in both output formats.
func TestDoctorCommand(t *testing.T) {
	kc := writeKubeconfig(t, fakeAPIServer(t))

	out, err := runDoctor(t, "web", "--kubeconfig", kc, "--offline")
	if !errors.Is(err, errProblemsFound) || !strings.Contains(err.Error(), "no-credentials") {
		t.Errorf("err = %v, want errProblemsFound naming no-credentials", err)
	}
	if got := ExitCode(err); got != ExitProblems {
		t.Errorf("exit code %d, want %d (problems found)", got, ExitProblems)
	}
	for _, want := range []string{"pod team/web", "✗ FAIL  kubelet-event", "=> cannot pull: no-credentials",
		"registry-kit pull-secret create"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	out, err = runDoctor(t, "pod/web", "--kubeconfig", kc, "--offline", "-o", "json")
	if !errors.Is(err, errProblemsFound) {
		t.Errorf("err = %v, want errProblemsFound", err)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, out)
	}
	if diff := cmp.Diff([]doctor.Cause{doctor.CauseNoCredentials}, rep.Causes()); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
}
