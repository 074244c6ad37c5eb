package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
	"github.com/registry-kit/registry-kit/manifests"
)

func generatedObjects(t *testing.T) ([]*unstructured.Unstructured, *manifests.User) {
	t.Helper()
	set, err := manifests.Generate(manifests.Options{Namespace: "docker-registry", NodePort: 30500, ServiceType: corev1.ServiceTypeNodePort, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := AllToUnstructured(set.Objects())
	if err != nil {
		t.Fatal(err)
	}
	return objs, set.GeneratedUser
}

// TestPullSyncObjects: deploy writes the source Secret for the node-local pull address next to the controller's
// objects with the pull-only user's credential the generator made; without a puller (an overlay that drops it) it
// falls back to a generated admin credential with a warning, keeps the Secret in the cluster, or says how to get one.
func TestPullSyncObjects(t *testing.T) {
	objs, admin := generatedObjects(t)
	puller := findPuller(objs)
	if puller == nil {
		t.Fatal("the generator made no pull-only user")
	}
	var noPuller []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() != "Secret" || u.GetName() != puller.Secret {
			noPuller = append(noPuller, u)
		}
	}
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "docker-registry", Name: DefaultPullSyncSource}}
	controller := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"}
	withSource := append([]string{"Secret/registry-kit-pull"}, controller...)
	tests := []struct {
		name        string
		objs        []*unstructured.Unstructured
		generated   *manifests.User
		cluster     []runtime.Object
		wantKinds   []string
		wantUser    *manifests.User // the credential in the source Secret
		wantWarning string
		wantErr     string
	}{
		{name: "puller, first deploy", objs: objs, generated: admin, wantKinds: withSource, wantUser: &puller.User},
		{name: "puller, redeploy", objs: objs, cluster: []runtime.Object{existing}, wantKinds: withSource, wantUser: &puller.User},
		{name: "no puller, generated admin: written with a warning", objs: noPuller, generated: admin, wantKinds: withSource,
			wantUser: admin, wantWarning: "admin credential: it can push"},
		{name: "no puller, kept admin, source secret in the cluster", objs: noPuller, cluster: []runtime.Object{existing}, wantKinds: controller},
		{name: "no puller, kept admin, no source secret", objs: noPuller, wantErr: "add --rotate-password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Clients{Kube: fake.NewClientset(tc.cluster...)}
			opts := Options{PullSync: &PullSync{}}
			got, warning, err := pullSyncObjects(context.Background(), c, tc.objs, tc.generated, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errPullSyncNoCredential) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.wantWarning == "") != (warning == "") || !strings.Contains(warning, tc.wantWarning) {
				t.Errorf("warning %q, want one containing %q", warning, tc.wantWarning)
			}
			var kinds []string
			for _, u := range got {
				k := u.GetKind()
				if k == "Secret" {
					k += "/" + u.GetName()
					payload, _, _ := unstructured.NestedString(u.Object, "data", corev1.DockerConfigJsonKey)
					checkSourcePayload(t, payload, tc.wantUser)
				}
				if k == "Deployment" {
					if img, _ := containerImage(u); img != manifests.DefaultImage {
						t.Errorf("controller image %q, want the registry's %q", img, manifests.DefaultImage)
					}
					if u.GetLabels()[manifests.LabelInstance] != "" || u.GetLabels()[manifests.LabelName] != syncer.AppName {
						t.Errorf("controller labels %v would be taken for the registry's", u.GetLabels())
					}
				}
				kinds = append(kinds, k)
			}
			if diff := cmp.Diff(tc.wantKinds, kinds); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func checkSourcePayload(t *testing.T, b64 string, user *manifests.User) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "data": map[string]any{corev1.DockerConfigJsonKey: b64}}}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		t.Fatal(err)
	}
	cfg, err := dockerconfig.Parse(s.Data[corev1.DockerConfigJsonKey])
	if err != nil {
		t.Fatalf("source secret payload: %v", err)
	}
	entry, ok := cfg.Auths["localhost:30500"]
	if !ok || entry.Username != user.Name || entry.Password != user.Password {
		t.Errorf("source secret has no entry for localhost:30500 with user %s's credential (servers: %d)", user.Name, len(cfg.Auths))
	}
}
