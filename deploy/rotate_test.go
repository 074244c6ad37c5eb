package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
	"github.com/registry-kit/registry-kit/manifests"
)

// TestRotatePullerPassword: a redeploy keeps the pull-only user's password; --rotate-puller-password draws a new
// one, in its Secret and in the htpasswd (the old one no longer verifies), and keeps the admin's line and the
// access policy. Passwords are compared, never printed.
func TestRotatePullerPassword(t *testing.T) {
	ctx := context.Background()
	o := manifests.Options{Namespace: "docker-registry", Name: "registry", Rand: rand.Reader, BcryptCost: 4}
	first, admin, err := generate(ctx, Clients{Kube: fake.NewClientset()}, o, false, false)
	if err != nil || admin == nil {
		t.Fatalf("first deploy: admin %v, err %v", admin != nil, err)
	}
	var live []runtime.Object
	for _, name := range []string{manifests.HtpasswdSecretName("registry"), manifests.PullerSecretName("registry")} {
		data := map[string][]byte{}
		for _, key := range []string{manifests.HtpasswdKey, manifests.AccessPolicyKey, corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey} {
			if v := secretData(t, first, name, key); v != nil {
				data[key] = v
			}
		}
		live = append(live, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "docker-registry", Name: name}, Data: data})
	}
	oldPuller := secretData(t, first, manifests.PullerSecretName("registry"), corev1.BasicAuthPasswordKey)
	policy := secretData(t, first, manifests.HtpasswdSecretName("registry"), manifests.AccessPolicyKey)

	for _, tc := range []struct {
		name   string
		rotate bool
	}{{"redeploy keeps it", false}, {"--rotate-puller-password replaces it", true}} {
		t.Run(tc.name, func(t *testing.T) {
			objs, _, err := generate(ctx, Clients{Kube: fake.NewClientset(live...)}, o, false, tc.rotate)
			if err != nil {
				t.Fatal(err)
			}
			pw := secretData(t, objs, manifests.PullerSecretName("registry"), corev1.BasicAuthPasswordKey)
			f, err := htpasswd.Parse(bytes.NewReader(secretData(t, objs, manifests.HtpasswdSecretName("registry"), manifests.HtpasswdKey)))
			if err != nil {
				t.Fatal(err)
			}
			if changed := !bytes.Equal(pw, oldPuller); changed != tc.rotate {
				t.Errorf("puller password changed: %v, want %v", changed, tc.rotate)
			}
			if !f.Verify(manifests.PullerUser, string(pw)) {
				t.Error("the htpasswd does not verify the puller Secret's password")
			}
			if tc.rotate && f.Verify(manifests.PullerUser, string(oldPuller)) {
				t.Error("the old puller password still verifies")
			}
			if !f.Verify(admin.Name, admin.Password) {
				t.Error("the admin password no longer verifies")
			}
			if got := secretData(t, objs, manifests.HtpasswdSecretName("registry"), manifests.AccessPolicyKey); !bytes.Equal(got, policy) {
				t.Error("the access policy changed")
			}
		})
	}
	if err := (Source{KustomizeDir: "x", RotatePullerPassword: true}).validate(); err == nil {
		t.Error("--rotate-puller-password with -k was accepted")
	}
}
