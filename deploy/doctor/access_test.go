package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/registry-kit/registry-kit/internal/registrytest"
)

// TestRunAccessDenied: against a real registry-kit serve with an access policy, credentials that are valid but
// may not pull the image's repository are named as such (403), with the policy rule to add, not as a bad password.
func TestRunAccessDenied(t *testing.T) {
	host := registrytest.Start(t, registrytest.Options{
		Users:  map[string]string{"admin": "admin-" + testPass, testUser: testPass},
		Policy: "rules:\n  - users: [admin]\n    repos: ['**']\n    actions: ['*']\n  - users: [" + testUser + "]\n    repos: ['other/**']\n    actions: [pull]\n",
	}).Host
	img, _ := random.Image(128, 1)
	ref, _ := name.ParseReference(host + "/team-a/app:v1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "admin-" + testPass})); err != nil {
		t.Fatal(err)
	}

	objs := []runtime.Object{testPod(host+"/team-a/app:v1", withSecrets("regcred"),
		backOff(`Back-off pulling image "`+host+`/team-a/app:v1": ErrImagePull: failed to authorize: 403 Forbidden`)),
		pullSecret(t, "team", "regcred", host, testUser, testPass), defaultSA("team")}
	rep, err := Run(context.Background(), fake.NewClientset(objs...), Target{Namespace: "team", Pod: "web"}, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, rep)
	if diff := cmp.Diff([]Cause{CauseAccessDenied}, rep.Causes()); diff != "" {
		t.Errorf("causes (-want +got):\n%s\n%s", diff, out)
	}
	for _, s := range []string{"the credentials are valid but not allowed to pull team-a/app",
		"- users: [" + testUser + "]", `repos: ["team-a/app"]`, "actions: [pull]",
		"registry-kit htpasswd add --file htpasswd --user " + testUser + " --role pull --repos \"team-a/app\""} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, testPass) {
		t.Error("the report contains the password")
	}
}
