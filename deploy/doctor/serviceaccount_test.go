package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/registry-kit/registry-kit/auth/satoken"
	"github.com/registry-kit/registry-kit/internal/registrytest"
	"github.com/registry-kit/registry-kit/internal/satokentest"
	"github.com/registry-kit/registry-kit/registry"
)

// TestRunServiceAccountToken: pods without pull secrets pull with their ServiceAccount token from a real
// registry-kit that verifies them. doctor requests a token for the pod's ServiceAccount as the kubelet would and
// names what stops the pull: the access policy (with the namespaces rule to add), the node's audience RBAC, an old
// kubelet, a registry expecting another audience, or a kubelet that sent no token although one would work.
func TestRunServiceAccountToken(t *testing.T) {
	issuer := satokentest.New(t)
	host := registrytest.Start(t, registrytest.Options{
		Users:  map[string]string{"admin": "admin-" + testPass},
		Policy: "rules:\n  - users: [admin]\n    repos: ['**']\n    actions: ['*']\n  - namespaces: [team-a]\n    repos: ['team-a/**']\n    actions: [pull]\n",
		Configure: func(c *registry.Config) {
			c.ServiceAccountTokens = satoken.Config{Audience: satokentest.Audience, Issuer: satokentest.IssuerURL, JWKSURL: issuer.URL() + satokentest.JWKSPath}
		},
	}).Host
	img, _ := random.Image(128, 1)
	ref, _ := name.ParseReference(host + "/team-a/app:v1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "admin-" + testPass})); err != nil {
		t.Fatal(err)
	}
	image := host + "/team-a/app:v1"
	pod := func(ns, event string) *corev1.Pod {
		p := testPod(image, backOff(event))
		p.Namespace, p.Spec.NodeName = ns, "node1"
		return p
	}
	node := func(version string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: version}}}
	}
	cases := []struct {
		name       string
		ns, event  string
		kubelet    string
		nodeDenied bool
		audience   string // doctor's --service-account-audience
		want       []Cause
		texts      []string
	}{
		{name: "namespace not allowed by the policy", ns: "team-b", event: "failed to authorize: 403 Forbidden", want: []Cause{CauseAccessDenied},
			texts: []string{"accepts a fresh token of system:serviceaccount:team-b:default", "not allowed to pull team-a/app", "- namespaces: [team-b]", `repos: ["team-a/app"]`}},
		{name: "node may not request the audience", ns: "team-a", event: "401 Unauthorized", nodeDenied: true, want: []Cause{CauseNodeAudienceDenied},
			texts: []string{"may not request ServiceAccount tokens for audience \"registry-kit\"", "request-serviceaccounts-token-audience", "--group=system:nodes"}},
		{name: "kubelet too old", ns: "team-a", event: "401 Unauthorized", kubelet: "v1.32.4", want: []Cause{CauseKubeletNoToken},
			texts: []string{"runs kubelet v1.32.4, which does not pass ServiceAccount tokens"}},
		{name: "audience mismatch", ns: "team-a", event: "401 Unauthorized", audience: "other-audience", want: []Cause{CauseTokenRejected},
			texts: []string{`refuses a fresh token of system:serviceaccount:team-a:default (issuer "` + satokentest.IssuerURL + `", audience "other-audience")`, "--service-account-audience other-audience"}},
		{name: "the token works: the kubelet sent none", ns: "team-a", event: "failed to authorize: 401 Unauthorized", want: []Cause{CauseKubeletNoToken},
			texts: []string{"accepts a fresh token", "exists", "--image-credential-provider-config", "--service-account-tokens --audience registry-kit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kubelet := tc.kubelet
			if kubelet == "" {
				kubelet = "v1.37.2"
			}
			cs := fake.NewClientset([]runtime.Object{pod(tc.ns, tc.event), defaultSA(tc.ns), node(kubelet)}...)
			var requested []string
			cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
				ca, ok := a.(k8stesting.CreateAction)
				if !ok || ca.GetSubresource() != "token" {
					return false, nil, nil
				}
				tr := ca.GetObject().(*authenticationv1.TokenRequest)
				requested = append(requested, strings.Join(tr.Spec.Audiences, ","))
				c := satokentest.PodClaims(a.GetNamespace(), "default", time.Now())
				c.Audience = jwt.Audience(tr.Spec.Audiences)
				tr.Status.Token = issuer.Sign("rsa-1", nil, c)
				return true, tr, nil
			})
			cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
				ok := sar.Spec.User == "system:node:node1" && sar.Spec.ResourceAttributes.Verb == "request-serviceaccounts-token-audience"
				sar.Status.Allowed = ok && !tc.nodeDenied
				return true, sar, nil
			})
			aud := tc.audience
			if aud == "" {
				aud = satokentest.Audience
			}
			rep, err := Run(context.Background(), cs, Target{Namespace: tc.ns, Pod: "web"}, Options{Timeout: 5 * time.Second, ServiceAccountAudience: aud})
			if err != nil {
				t.Fatal(err)
			}
			out := render(t, rep)
			if diff := cmp.Diff(tc.want, rep.Causes()); diff != "" {
				t.Errorf("causes (-want +got):\n%s\n%s", diff, out)
			}
			for _, s := range tc.texts {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if strings.Contains(out, "eyJ") {
				t.Errorf("the report shows a token:\n%s", out)
			}
		})
	}
}
