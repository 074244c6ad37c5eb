package pullsecret

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var payload = []byte(`{"auths":{"127.0.0.1:5000":{"username":"u","password":"p","auth":"dTpw"}}}`)

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

func sa(namespace string, pullSecrets ...string) *corev1.ServiceAccount {
	s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
	for _, p := range pullSecrets {
		s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: p})
	}
	return s
}

func fixture() []runtime.Object {
	return []runtime.Object{
		ns("a"), ns("b"), ns("kube-system"), ns("kube-public"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dying"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		sa("a", "existing"), sa("b"), sa("kube-system"),
	}
}

func writes(c *fake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			out = append(out, v+" "+a.GetResource().Resource+" "+a.GetNamespace())
		}
	}
	return out
}

func TestApply(t *testing.T) {
	tests := []struct {
		name        string
		extra       []runtime.Object
		opts        Options
		want        []NamespaceResult
		wantErr     string
		wantSA      map[string][]string
		wantNoWrite bool
	}{
		{
			name: "two namespaces, service account keeps existing pull secrets",
			opts: Options{Name: "regcred", Namespaces: []string{"b", "a", "a"}, ServiceAccount: "default"},
			want: []NamespaceResult{
				{Namespace: "a", Secret: Created, ServiceAccount: Patched},
				{Namespace: "b", Secret: Created, ServiceAccount: Patched},
			},
			wantSA: map[string][]string{"a": {"existing", "regcred"}, "b": {"regcred"}},
		},
		{
			name: "all namespaces skips excluded and terminating",
			opts: Options{Name: "regcred", AllNamespaces: true, ExcludeNamespaces: DefaultExcludedNamespaces},
			want: []NamespaceResult{{Namespace: "a", Secret: Created, ServiceAccount: Skipped}, {Namespace: "b", Secret: Created, ServiceAccount: Skipped}},
		},
		{
			name:  "idempotent rerun",
			extra: []runtime.Object{Secret("regcred", "a", payload), sa("c", "regcred"), ns("c")},
			opts:  Options{Name: "regcred", Namespaces: []string{"a", "c"}, ServiceAccount: "default"},
			want: []NamespaceResult{
				{Namespace: "a", Secret: Unchanged, ServiceAccount: Patched},
				{Namespace: "c", Secret: Created, ServiceAccount: Unchanged},
			},
		},
		{
			name:  "overwrite",
			extra: []runtime.Object{Secret("regcred", "a", []byte(`{"auths":{}}`))},
			opts:  Options{Name: "regcred", Namespaces: []string{"a"}, Overwrite: true},
			want:  []NamespaceResult{{Namespace: "a", Secret: Updated, ServiceAccount: Skipped}},
		},
		{
			name:        "different credentials without overwrite",
			extra:       []runtime.Object{Secret("regcred", "b", []byte(`{"auths":{}}`))},
			opts:        Options{Name: "regcred", Namespaces: []string{"a", "b"}, ServiceAccount: "default"},
			wantErr:     "secret b/regcred already exists with other credentials: pass --overwrite to replace it",
			wantNoWrite: true,
		},
		{
			name: "secret of another type, missing namespace, missing service account: all named, nothing written",
			extra: []runtime.Object{&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "b"}, Type: corev1.SecretTypeOpaque,
			}},
			opts: Options{Name: "regcred", Namespaces: []string{"a", "b", "nope", "dying"}, ServiceAccount: "builder", Overwrite: true},
			wantErr: strings.Join([]string{
				`secret b/regcred already exists with type "Opaque": refusing to replace a secret of another type`,
				`namespace "nope" does not exist`,
				`namespace "dying" is terminating`,
				`service account a/builder does not exist`,
			}, "|"),
			wantNoWrite: true,
		},
		{
			name:    "invalid options",
			opts:    Options{Name: "Bad_Name", Namespaces: []string{"UPPER"}},
			wantErr: `secret name "Bad_Name"|namespace "UPPER"|no .dockerconfigjson payload`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientset(append(fixture(), tt.extra...)...)
			c.ClearActions()
			if tt.name != "invalid options" {
				tt.opts.DockerConfigJSON = payload
			}
			got, err := Apply(context.Background(), c, tt.opts)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("error %v, want ErrRefused", err)
				}
				for _, part := range strings.Split(tt.wantErr, "|") {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q lacks %q", err, part)
					}
				}
				if w := writes(c); len(w) != 0 {
					t.Errorf("refused but wrote: %v", w)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			for _, r := range got {
				s, err := c.CoreV1().Secrets(r.Namespace).Get(context.Background(), tt.opts.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if s.Type != corev1.SecretTypeDockerConfigJson || string(s.Data[corev1.DockerConfigJsonKey]) != string(payload) {
					t.Errorf("secret %s/%s has type %q and other data", r.Namespace, s.Name, s.Type)
				}
			}
			for namespace, want := range tt.wantSA {
				s, _ := c.CoreV1().ServiceAccounts(namespace).Get(context.Background(), "default", metav1.GetOptions{})
				var names []string
				for _, r := range s.ImagePullSecrets {
					names = append(names, r.Name)
				}
				if diff := cmp.Diff(want, names); diff != "" {
					t.Errorf("%s imagePullSecrets (-want +got):\n%s", namespace, diff)
				}
			}
		})
	}
}

// TestApplyRetriesServiceAccountConflict: a concurrent writer bumps the ServiceAccount between our read and
// update; the retry must keep the other writer's change.
func TestApplyRetriesServiceAccountConflict(t *testing.T) {
	c := fake.NewClientset(fixture()...)
	conflicts := 0
	c.PrependReactor("update", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Another controller adds a pull secret first.
		tracker := c.Tracker()
		obj, _ := tracker.Get(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "a", "default")
		s := obj.(*corev1.ServiceAccount).DeepCopy()
		s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: "concurrent"})
		_ = tracker.Update(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, s, "a")
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "serviceaccounts"}, "default", errors.New("modified"))
	})
	if _, err := Apply(context.Background(), c, Options{Name: "regcred", Namespaces: []string{"a"}, ServiceAccount: "default", DockerConfigJSON: payload}); err != nil {
		t.Fatal(err)
	}
	s, _ := c.CoreV1().ServiceAccounts("a").Get(context.Background(), "default", metav1.GetOptions{})
	want := []corev1.LocalObjectReference{{Name: "existing"}, {Name: "concurrent"}, {Name: "regcred"}}
	if diff := cmp.Diff(want, s.ImagePullSecrets); diff != "" {
		t.Errorf("imagePullSecrets (-want +got):\n%s", diff)
	}
}
