package syncer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

const (
	srcNS   = "docker-registry"
	srcName = "registry-kit-pull"
	target  = "regcred"
)

func payload(pw string) []byte {
	return []byte(`{"auths":{"localhost:30500":{"username":"admin","password":"` + pw + `"}}}`)
}

func source(pw string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: srcNS, Name: srcName},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: payload(pw)},
	}
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

func serviceAccount(ns, name string, annotation string, refs ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if annotation != "" {
		sa.Annotations = map[string]string{AddedAnnotation: annotation}
	}
	for _, r := range refs {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: r})
	}
	return sa
}

func ourCopy(ns, pw string) *corev1.Secret {
	s := source(pw)
	s.Namespace, s.Name = ns, target
	s.Labels = map[string]string{CopyLabel: CopyLabelValue, managedByLabel: managedByValue}
	s.Annotations = map[string]string{SourceAnnotation: srcNS + "/" + srcName}
	return s
}

func foreignSecret(ns string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: target}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"token": []byte("theirs")}}
}

func baseConfig() Config {
	return Config{
		Source:          types.NamespacedName{Namespace: srcNS, Name: srcName},
		TargetName:      target,
		Namespaces:      NamespaceSelector{Exclude: DefaultExcludePatterns},
		ServiceAccounts: ServiceAccountSelector{Names: []string{"default"}},
	}
}

// nsState is what a test compares in one namespace: the target Secret and every ServiceAccount's references.
type nsState struct {
	Secret   string            // "" none, "copy:<password>", "foreign"
	Accounts map[string]string // name -> "ref1,ref2 [added: ...]"
}

func stateOf(t *testing.T, cs kubernetes.Interface, ns string) nsState {
	t.Helper()
	ctx := context.Background()
	st := nsState{Accounts: map[string]string{}}
	if s, err := cs.CoreV1().Secrets(ns).Get(ctx, target, metav1.GetOptions{}); err == nil {
		st.Secret = "foreign"
		if owned(s) {
			st.Secret = "copy:" + passwordIn(s)
		}
	}
	sas, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		var refs []string
		for _, r := range sa.ImagePullSecrets {
			refs = append(refs, r.Name)
		}
		v := strings.Join(refs, ",")
		if a := sa.Annotations[AddedAnnotation]; a != "" {
			v += " [added: " + a + "]"
		}
		st.Accounts[sa.Name] = v
	}
	return st
}

// passwordIn returns the test password embedded in a copy's payload (test data only).
func passwordIn(s *corev1.Secret) string {
	p := string(s.Data[corev1.DockerConfigJsonKey])
	i := strings.Index(p, `"password":"`)
	if i < 0 {
		return "?"
	}
	rest := p[i+len(`"password":"`):]
	return rest[:strings.Index(rest, `"`)]
}

func startController(t *testing.T, cfg Config, objs ...runtime.Object) (*Controller, kubernetes.Interface, *record.FakeRecorder) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	rec := record.NewFakeRecorder(100)
	c, err := New(cs, cfg, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Shutdown() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, cs, rec
}

func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, strings.SplitN(e, " ", 3)[1]) // "Type Reason message": keep the reason
		default:
			return out
		}
	}
}

func TestReconcile(t *testing.T) {
	appLabels := map[string]string{"pull-secrets": "yes"}
	tests := []struct {
		name       string
		cfg        func(*Config)
		ns         *corev1.Namespace
		objs       []runtime.Object
		want       nsState
		wantEvents []string
	}{
		{
			name:       "new namespace gets the copy and its default ServiceAccount the reference",
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{serviceAccount("shop", "default", ""), serviceAccount("shop", "builder", "")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred [added: regcred]", "builder": ""}},
			wantEvents: []string{ReasonCreated, ReasonAdded},
		},
		{
			name:       "unrelated imagePullSecrets are kept",
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{serviceAccount("shop", "default", "", "theirs")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "theirs,regcred [added: regcred]"}},
			wantEvents: []string{ReasonCreated, ReasonAdded},
		},
		{
			name:       "a reference someone else added is not recorded as ours",
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{serviceAccount("shop", "default", "", "regcred")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred"}},
			wantEvents: []string{ReasonCreated},
		},
		{
			name: "kube-* is excluded by default",
			ns:   namespace("kube-system", nil),
			objs: []runtime.Object{serviceAccount("kube-system", "default", "")},
			want: nsState{Accounts: map[string]string{"default": ""}},
		},
		{
			name: "labels that do not match the selector",
			cfg:  func(c *Config) { c.Namespaces.Labels = labels.SelectorFromSet(appLabels) },
			ns:   namespace("shop", map[string]string{"team": "a"}),
			objs: []runtime.Object{serviceAccount("shop", "default", "")},
			want: nsState{Accounts: map[string]string{"default": ""}},
		},
		{
			name:       "labels that match the selector",
			cfg:        func(c *Config) { c.Namespaces.Labels = labels.SelectorFromSet(appLabels) },
			ns:         namespace("shop", appLabels),
			objs:       []runtime.Object{serviceAccount("shop", "default", "")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred [added: regcred]"}},
			wantEvents: []string{ReasonCreated, ReasonAdded},
		},
		{
			name: "include list leaves other names out",
			cfg:  func(c *Config) { c.Namespaces.Include = []string{"team-*"} },
			ns:   namespace("shop", nil),
			objs: []runtime.Object{serviceAccount("shop", "default", "")},
			want: nsState{Accounts: map[string]string{"default": ""}},
		},
		{
			name:       "a Secret of the target name the controller did not make is left alone",
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{foreignSecret("shop"), serviceAccount("shop", "default", "")},
			want:       nsState{Secret: "foreign", Accounts: map[string]string{"default": ""}},
			wantEvents: []string{ReasonNotOverwritten},
		},
		{
			name:       "a stale copy follows the source",
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{ourCopy("shop", "old"), serviceAccount("shop", "default", "regcred", "regcred")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred [added: regcred]"}},
			wantEvents: []string{ReasonUpdated},
		},
		{
			name: "a namespace that left the selection loses only what the controller added",
			cfg:  func(c *Config) { c.Namespaces.Labels = labels.SelectorFromSet(appLabels) },
			ns:   namespace("shop", nil),
			objs: []runtime.Object{ourCopy("shop", "pw1"),
				serviceAccount("shop", "default", "regcred", "theirs", "regcred"),
				serviceAccount("shop", "ci", "", "regcred")},
			want: nsState{Accounts: map[string]string{"default": "theirs", "ci": "regcred"}},
		},
		{
			name:       "all ServiceAccounts",
			cfg:        func(c *Config) { c.ServiceAccounts = ServiceAccountSelector{All: true} },
			ns:         namespace("shop", nil),
			objs:       []runtime.Object{serviceAccount("shop", "default", ""), serviceAccount("shop", "builder", "")},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred [added: regcred]", "builder": "regcred [added: regcred]"}},
			wantEvents: []string{ReasonCreated, ReasonAdded, ReasonAdded},
		},
		{
			name: "ServiceAccounts by label",
			cfg: func(c *Config) {
				c.ServiceAccounts = ServiceAccountSelector{Labels: labels.SelectorFromSet(map[string]string{"pulls": "private"})}
			},
			ns: namespace("shop", nil),
			objs: []runtime.Object{serviceAccount("shop", "default", ""),
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: map[string]string{"pulls": "private"}}}},
			want:       nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "", "web": "regcred [added: regcred]"}},
			wantEvents: []string{ReasonCreated, ReasonAdded},
		},
		{
			name:       "the source's own namespace: no copy over the source, ServiceAccounts patched",
			cfg:        func(c *Config) { c.TargetName = srcName },
			ns:         namespace(srcNS, nil),
			objs:       []runtime.Object{serviceAccount(srcNS, "default", "")},
			want:       nsState{Accounts: map[string]string{"default": srcName + " [added: " + srcName + "]"}},
			wantEvents: []string{ReasonAdded},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			objs := append([]runtime.Object{source("pw1"), tc.ns}, tc.objs...)
			c, cs, rec := startController(t, cfg, objs...)
			if err := c.r.reconcile(context.Background(), tc.ns.Name); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			got := stateOf(t, cs, tc.ns.Name)
			if cfg.TargetName == srcName {
				got.Secret = "" // the source itself
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEvents, events(rec)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// Idempotent: a second pass (once the caches have seen the writes) changes nothing and records nothing.
			waitCaches(t, c, cs, tc.ns.Name)
			if err := c.r.reconcile(context.Background(), tc.ns.Name); err != nil {
				t.Fatalf("second reconcile: %v", err)
			}
			if cfg.TargetName != srcName {
				if diff := cmp.Diff(got, stateOf(t, cs, tc.ns.Name)); diff != "" {
					t.Errorf("second reconcile changed the state (-first +second):\n%s", diff)
				}
			}
			if ev := slices.DeleteFunc(events(rec), func(r string) bool { return r == ReasonNotOverwritten }); len(ev) > 0 {
				t.Errorf("second reconcile recorded %v", ev)
			}
		})
	}
}

// TestRunReactsToEvents: with the controller running, a namespace created afterwards gets the copy, its
// ServiceAccount created later is patched on its own creation event, and a changed source reaches the copy.
func TestRunReactsToEvents(t *testing.T) {
	c, cs, _ := startController(t, baseConfig(), source("pw1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("late", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "late", nsState{Secret: "copy:pw1", Accounts: map[string]string{}})
	if _, err := cs.CoreV1().ServiceAccounts("late").Create(ctx, serviceAccount("late", "default", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "late", nsState{Secret: "copy:pw1", Accounts: map[string]string{"default": "regcred [added: regcred]"}})

	if _, err := cs.CoreV1().Secrets(srcNS).Update(ctx, source("pw2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "late", nsState{Secret: "copy:pw2", Accounts: map[string]string{"default": "regcred [added: regcred]"}})

	// A deleted copy comes back.
	if err := cs.CoreV1().Secrets("late").Delete(ctx, target, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, cs, "late", nsState{Secret: "copy:pw2", Accounts: map[string]string{"default": "regcred [added: regcred]"}})
}

func waitState(t *testing.T, cs kubernetes.Interface, ns string, want nsState) {
	t.Helper()
	var got nsState
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		got = stateOf(t, cs, ns)
		return cmp.Diff(want, got) == "", nil
	})
	if err != nil {
		t.Fatalf("namespace %s (-want +got):\n%s", ns, cmp.Diff(want, got))
	}
}

// waitCaches waits until the controller's listers show what the API holds in namespace ns.
func waitCaches(t *testing.T, c *Controller, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		live, err := cs.CoreV1().Secrets(ns).Get(ctx, target, metav1.GetOptions{})
		cached, cerr := c.r.copies.Secrets(ns).Get(target)
		if (err == nil) != (cerr == nil) || (err == nil && !cmp.Equal(live.Data, cached.Data)) {
			return false, nil
		}
		sas, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, sa := range sas.Items {
			cached, err := c.r.serviceAccounts.ServiceAccounts(ns).Get(sa.Name)
			if err != nil || !cmp.Equal(sa.ImagePullSecrets, cached.ImagePullSecrets) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("caches of namespace %s did not catch up: %v", ns, err)
	}
}
