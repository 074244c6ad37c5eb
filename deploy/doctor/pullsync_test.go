package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// syncDeployment is the controller's Deployment as `deploy --sync-pull-secrets` writes it.
func syncDeployment(t *testing.T, m syncer.ManifestOptions) *appsv1.Deployment {
	t.Helper()
	objs, err := syncer.Manifests(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	t.Fatal("no Deployment among the controller's objects")
	return nil
}

// TestPullSecretSyncCheck: with a pull-secret controller in the cluster, doctor says whether it reaches the pod's
// namespace and, when its selector leaves the namespace out, which label to add.
func TestPullSecretSyncCheck(t *testing.T) {
	host := basicAuthRegistry(t)
	ctl := syncer.ManifestOptions{Namespace: "docker-registry", Image: "registry-kit:dev", SourceName: "registry-kit-pull",
		TargetName: "regcred", NamespaceSelector: "pull-secrets=registry-kit"}
	ns := func(labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: labels}}
	}
	selected := map[string]string{"pull-secrets": "registry-kit"}
	cases := []struct {
		name       string
		ctl        syncer.ManifestOptions
		objs       []runtime.Object
		want       []Cause
		wantStatus Status
		texts      []string
	}{
		{name: "selector leaves the namespace out: add the label", ctl: ctl,
			objs:       []runtime.Object{ns(map[string]string{"team": "a"}), testPod(host+"/app:v1", backOff("")), defaultSA("team")},
			want:       []Cause{CausePullSyncNotReached, CauseNoCredentials},
			wantStatus: Fail,
			texts:      []string{"has not reached namespace \"team\" (labels do not match the selector)", "kubectl label namespace team pull-secrets=registry-kit"}},
		{name: "excluded by name", ctl: func() syncer.ManifestOptions {
			c := ctl
			c.NamespaceSelector = ""
			c.Exclude = []string{"te*"}
			return c
		}(),
			objs:       []runtime.Object{ns(nil), testPod(host+"/app:v1", backOff("")), defaultSA("team")},
			want:       []Cause{CausePullSyncNotReached, CauseNoCredentials},
			wantStatus: Fail,
			texts:      []string{"(excluded by name)", "--exclude-namespace te*"}},
		{name: "reached, but the pod was admitted before the patch", ctl: ctl,
			objs: []runtime.Object{ns(selected), testPod(host+"/app:v1", backOff("")), defaultSA("team", "regcred"),
				pullSecret(t, "team", "regcred", host, testUser, testPass)},
			want:       []Cause{CauseServiceAccountDrift},
			wantStatus: Warn,
			texts:      []string{"admitted before the controller patched serviceaccount \"default\"", "no webhook adds them later", "recreate the pod"}},
		{name: "reached and the pod has the copy", ctl: ctl,
			objs: []runtime.Object{ns(selected), testPod(host+"/app:v1", withSecrets("regcred"), running), defaultSA("team", "regcred"),
				pullSecret(t, "team", "regcred", host, testUser, testPass)},
			wantStatus: Pass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(append(c.objs, syncDeployment(t, c.ctl))...)
			rep, err := Run(context.Background(), cs, Target{Namespace: "team", Pod: "web"}, Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			out := render(t, rep)
			var want []Cause
			if c.want != nil {
				want = c.want
			}
			if diff := cmp.Diff(want, rep.Causes()); diff != "" {
				t.Errorf("causes (-want +got):\n%s\n%s", diff, out)
			}
			var got []Status
			for _, ch := range rep.Pods[0].Images[0].Checks {
				if ch.Name == CheckPullSecretSync {
					got = append(got, ch.Status)
				}
			}
			if diff := cmp.Diff([]Status{c.wantStatus}, got); diff != "" {
				t.Errorf("%s checks (-want +got):\n%s\n%s", CheckPullSecretSync, diff, out)
			}
			for _, s := range c.texts {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}
