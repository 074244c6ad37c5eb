//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
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
