package deploy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/registry-kit/registry-kit/manifests"
)

// TestPullerInstructions: the generated objects carry the pull-only user, and the printed pull-secret help uses it,
// never admin, without printing its password.
func TestPullerInstructions(t *testing.T) {
	set, err := manifests.Generate(manifests.Options{Htpasswd: []byte("admin:$2y$05$yipiRzgH6lWLUtbMoctswevRAI2TvhATyTzLSmalyNGuSI0SZKb3.\n"),
		HTTPSecret: []byte("s"), PullerPassword: "puller-secret-pw", BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := AllToUnstructured(set.Objects())
	if err != nil {
		t.Fatal(err)
	}
	p := findPuller(objs)
	if p == nil {
		t.Fatal("no pull-only user found among the generated objects")
	}
	if diff := cmp.Diff(Puller{User: manifests.User{Name: "puller", Password: "puller-secret-pw"}, Namespace: "docker-registry", Secret: "registry-puller"}, *p); diff != "" {
		t.Errorf("puller (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	Instructions{Result: &Result{Namespace: "docker-registry", Service: "registry", ServiceType: "NodePort", NodePort: 30500,
		PushAddress: "127.0.0.1:30500", PullPrefix: "localhost:30500", Puller: p, PullSecrets: []string{"shop/registry-kit-pull"}}, User: "admin"}.Write(&b)
	out := b.String()
	for _, want := range []string{
		"Pull secrets (user puller, pull only) created: shop/registry-kit-pull",
		"kubectl get secret -n docker-registry registry-puller -o jsonpath='{.data.password}' | base64 -d |",
		"registry-kit pull-secret create registry-kit-pull -n my-app --server localhost:30500 --username puller --password-stdin",
		"registry-kit deploy --pull-secret-namespaces my-app",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("instructions lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "puller-secret-pw") || strings.Contains(out, "pull-secret create registry-kit-pull -n my-app --server localhost:30500 --username admin") {
		t.Errorf("instructions show the puller password or pull as admin:\n%s", out)
	}
}
