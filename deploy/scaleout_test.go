package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/manifests"
)

// scaleOutOptions: two replicas on S3 with an in-cluster Redis, as `deploy --storage s3 --replicas 2 --with-redis`.
func scaleOutOptions() manifests.Options {
	return manifests.Options{
		Namespace: "docker-registry", Replicas: 2, Storage: manifests.StorageS3, ServiceType: corev1.ServiceTypeNodePort, NodePort: 30500,
		S3:    manifests.S3{Endpoint: "http://10.200.0.1:9000", Insecure: true, ForcePathStyle: true, Bucket: "registry"},
		Redis: manifests.Redis{InCluster: true}, BcryptCost: 4, Rand: rand.Reader,
	}
}

func secretData(t *testing.T, objs []*unstructured.Unstructured, name, key string) []byte {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "Secret" && u.GetName() == name {
			var s corev1.Secret
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
				t.Fatal(err)
			}
			return s.Data[key]
		}
	}
	return nil
}

func refs(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range objs {
		out = append(out, ref(u))
	}
	sort.Strings(out)
	return out
}

// TestGenerateKeepsRedisPassword: a redeploy with --with-redis feeds the password of the existing Secret
// registry-redis back to the generator, like the HTTP secret; a password file given on the command line wins; a
// first deploy generates one. Passwords are compared, never printed.
func TestGenerateKeepsRedisPassword(t *testing.T) {
	existing := []byte("existing-redis-password")
	given := []byte("given-redis-password")
	live := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "docker-registry", Name: "registry-redis"},
		Data: map[string][]byte{manifests.RedisPasswordKey: existing}}
	tests := []struct {
		name    string
		cluster []runtime.Object
		given   []byte
		want    []byte // nil: a generated password, different from existing and given
	}{
		{name: "redeploy keeps the password", cluster: []runtime.Object{live}, want: existing},
		{name: "a password file wins", cluster: []runtime.Object{live}, given: given, want: given},
		{name: "first deploy generates one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := scaleOutOptions()
			o.Redis.Password = tc.given
			objs, _, err := generate(context.Background(), Clients{Kube: fake.NewClientset(tc.cluster...)}, o, false, false)
			if err != nil {
				t.Fatal(err)
			}
			got := secretData(t, objs, "registry-redis", manifests.RedisPasswordKey)
			switch {
			case tc.want != nil && !bytes.Equal(got, tc.want):
				t.Errorf("Secret registry-redis does not hold the expected password (%d bytes, want %d)", len(got), len(tc.want))
			case tc.want == nil && (len(got) != 64 || bytes.Equal(got, existing) || bytes.Equal(got, given)):
				t.Errorf("Secret registry-redis holds no freshly generated 64-character password (%d bytes)", len(got))
			}
		})
	}
	// --rotate-password rotates the admin password only.
	objs, _, err := generate(context.Background(), Clients{Kube: fake.NewClientset(live)}, scaleOutOptions(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secretData(t, objs, "registry-redis", manifests.RedisPasswordKey), existing) {
		t.Error("--rotate-password changed the Redis password")
	}
}

// TestAddMissingSecretsRedis: for an overlay whose Redis Deployment needs Secret <name>-redis, the Secret is
// generated unless the overlay or the cluster has it; the optional S3 Secret is never generated.
func TestAddMissingSecretsRedis(t *testing.T) {
	build := func(t *testing.T, o manifests.Options) []*unstructured.Unstructured {
		t.Helper()
		o.ExternalSecrets, o.OmitNamespace = true, true
		set, err := manifests.Generate(o)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := AllToUnstructured(set.Objects())
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	external := scaleOutOptions()
	external.Redis = manifests.Redis{Addrs: []string{"redis.storage.svc:6379"}}
	liveRedis := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "docker-registry", Name: "registry-redis"},
		Data: map[string][]byte{manifests.RedisPasswordKey: []byte("live")}}
	tests := []struct {
		name    string
		objs    []*unstructured.Unstructured
		cluster []runtime.Object
		want    []string // Secrets added
	}{
		{name: "in-cluster redis", objs: build(t, scaleOutOptions()),
			want: []string{"secret/registry-htpasswd", "secret/registry-http-secret", "secret/registry-puller", "secret/registry-redis"}},
		{name: "redis secret in the cluster", objs: build(t, scaleOutOptions()), cluster: []runtime.Object{liveRedis},
			want: []string{"secret/registry-htpasswd", "secret/registry-http-secret", "secret/registry-puller"}},
		{name: "external redis: the password is optional", objs: build(t, external),
			want: []string{"secret/registry-htpasswd", "secret/registry-http-secret", "secret/registry-puller"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, user, err := AddMissingSecrets(context.Background(), Clients{Kube: fake.NewClientset(tc.cluster...)}, tc.objs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, refs(out[len(tc.objs):])); diff != "" {
				t.Errorf("secrets added (-want +got):\n%s", diff)
			}
			if user == nil {
				t.Error("no generated admin user reported")
			}
			for _, u := range out[len(tc.objs):] {
				if u.GetNamespace() != "docker-registry" || !isOurs(u) {
					t.Errorf("%s: namespace %q, labels %v", ref(u), u.GetNamespace(), u.GetLabels())
				}
			}
			if pw := secretData(t, out, "registry-redis", manifests.RedisPasswordKey); strings.Contains(strings.Join(tc.want, " "), "registry-redis") && len(pw) != 64 {
				t.Errorf("generated Redis password has %d bytes, want 64", len(pw))
			}
		})
	}
}

// TestDescribeServiceSkipsRedis: the registry's Service, not the Redis one, gives the node port and the prefix,
// whichever order they were applied in.
func TestDescribeServiceSkipsRedis(t *testing.T) {
	set, err := manifests.Generate(scaleOutOptions())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ToUnstructured(set.Service)
	if err != nil {
		t.Fatal(err)
	}
	redis, err := ToUnstructured(set.RedisService)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]*unstructured.Unstructured{{svc, redis}, {redis, svc}} {
		var r Result
		r.describeService([]Applied{{Object: order[0]}, {Object: order[1]}})
		got := []string{r.Service, r.ServiceType, r.PullPrefix}
		if diff := cmp.Diff([]string{"registry", "NodePort", "localhost:30500"}, got); diff != "" {
			t.Errorf("applied %s then %s (-want +got):\n%s", order[0].GetName(), order[1].GetName(), diff)
		}
	}
}

// TestUndeployScaleOut: undeploy removes the PodDisruptionBudget and the Redis Deployment, Service and Secret,
// and with no claim left, the namespace deploy created.
func TestUndeployScaleOut(t *testing.T) {
	set, err := manifests.Generate(scaleOutOptions())
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, o := range set.Objects() {
		u, err := ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		if u.GetKind() == "Namespace" {
			u.SetAnnotations(map[string]string{CreatedByAnnotation: CreatedByValue})
		}
		objs = append(objs, owned(u, FieldManager))
	}
	var progress bytes.Buffer
	res, err := Undeploy(context.Background(), Clients{Dynamic: fakeDynamic(objs...)}, UndeployOptions{Namespace: "docker-registry", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(res.Deleted)
	want := []string{"deployment.apps/registry", "deployment.apps/registry-redis", "namespace/docker-registry",
		"poddisruptionbudget.policy/registry", "secret/registry-htpasswd", "secret/registry-http-secret", "secret/registry-puller", "secret/registry-redis",
		"service/registry", "service/registry-redis"}
	if diff := cmp.Diff(want, res.Deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if len(res.Kept) != 0 {
		t.Errorf("kept %v, want nothing", res.Kept)
	}
}

// TestRBACCoversScaleOut: the Role printed by --print-rbac grants, inside the registry's namespace, what deploy
// needs for every object the generator can produce (filesystem and scale-out, with an Ingress) and what undeploy
// lists and deletes; the ClusterRole grants only the namespace itself, by name, and the list of nodes.
func TestRBACCoversScaleOut(t *testing.T) {
	out, err := RBACFor("docker-registry")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("--print-rbac has %d YAML documents, want a Role and a ClusterRole:\n%s", len(docs), out)
	}
	var role rbacv1.Role
	var clusterRole rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil || role.Kind != "Role" || role.Namespace != "docker-registry" {
		t.Fatalf("first document is not a Role in docker-registry (%v):\n%s", err, docs[0])
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &clusterRole); err != nil || clusterRole.Kind != "ClusterRole" {
		t.Fatalf("second document is not a ClusterRole (%v):\n%s", err, docs[1])
	}
	allowedIn := func(rules []rbacv1.PolicyRule, group, resource, name, verb string) bool {
		for _, r := range rules {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
				return true
			}
		}
		return false
	}
	allowed := func(group, resource, verb string) bool {
		if resource == "namespaces" || resource == "nodes" {
			return allowedIn(clusterRole.Rules, group, resource, "docker-registry", verb)
		}
		return allowedIn(role.Rules, group, resource, "", verb)
	}
	for _, r := range clusterRole.Rules {
		for _, res := range r.Resources {
			if res != "namespaces" && res != "nodes" {
				t.Errorf("the ClusterRole grants %v on %s: only cluster-scoped resources belong there", r.Verbs, res)
			}
			if res == "namespaces" && !slices.Equal(r.ResourceNames, []string{"docker-registry"}) {
				t.Errorf("the ClusterRole grants %v on namespaces %v, want only docker-registry by name", r.Verbs, r.ResourceNames)
			}
		}
	}
	if allowedIn(clusterRole.Rules, "", "namespaces", "other", "delete") || allowedIn(clusterRole.Rules, "", "namespaces", "other", "create") {
		t.Errorf("the ClusterRole allows creating or deleting another namespace")
	}
	fs := scaleOutOptions()
	fs.Storage, fs.S3, fs.Redis, fs.Replicas = manifests.StorageFilesystem, manifests.S3{}, manifests.Redis{}, 1
	fs.Ingress = &manifests.Ingress{Host: "registry.example"}
	so := scaleOutOptions()
	so.S3.AccessKey, so.S3.SecretKey = []byte("a"), []byte("s")
	var missing []string
	seen := map[string]bool{}
	for _, o := range []manifests.Options{fs, so} {
		set, err := manifests.Generate(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range set.Objects() {
			gvk := obj.GetObjectKind().GroupVersionKind()
			resource := strings.ToLower(gvk.Kind) + "s"
			if gvk.Kind == "Ingress" {
				resource = "ingresses"
			}
			seen[gvk.Kind] = true
			verbs := []string{"get", "create", "patch", "delete"}
			if gvk.Kind == "Namespace" {
				verbs = []string{"get", "patch", "delete"} // created by an administrator before the Role can exist
			}
			for _, verb := range verbs {
				if !allowed(gvk.Group, resource, verb) {
					missing = append(missing, verb+" "+schema.GroupResource{Group: gvk.Group, Resource: resource}.String())
				}
			}
		}
	}
	for _, gvr := range append(undeployKinds, pvcResource) {
		for _, verb := range []string{"list", "delete"} {
			if !allowed(gvr.Group, gvr.Resource, verb) {
				missing = append(missing, verb+" "+gvr.GroupResource().String())
			}
		}
	}
	for _, r := range []string{"pods", "events", "nodes"} {
		if !allowed("", r, "list") {
			missing = append(missing, "list "+r)
		}
	}
	if len(missing) > 0 {
		t.Errorf("--print-rbac does not allow: %s", strings.Join(missing, ", "))
	}
	for _, k := range []string{"PodDisruptionBudget", "Deployment", "Service", "Ingress", "PersistentVolumeClaim", "Namespace", "Secret"} {
		if !seen[k] {
			t.Errorf("the generated objects hold no %s: the test does not cover it", k)
		}
	}
}
