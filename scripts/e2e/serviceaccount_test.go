//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/auth/satoken"
	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/deploy/doctor"
)

// saAudience is the token audience of this test: not one the API server accepts.
const saAudience = "registry-kit-e2e"

// TestServiceAccountTokenPulls: no Secret anywhere. The kubelet runs registry-kit as its credential provider with
// the config `credential-provider config --service-account-tokens` generates and passes each pod's own
// ServiceAccount token; `registry-kit serve` verifies it against the cluster's issuer keys (read from the API
// server) and the access policy grants namespaces. A pod of namespace A (no pull secret, no token mounted) pulls
// team-a/app and runs; a pod of namespace B gets ErrImagePull (403) and doctor names the policy; once the policy
// grants B, a new pod of B runs. Tokens for another audience, forged with another key, or expired (signed with the
// cluster's real key) are refused with 401.
func TestServiceAccountTokenPulls(t *testing.T) {
	cs := kubeClient(t)
	env := clusterEnv(t)
	kc := env.get(t, "KUBECONFIG")
	nsA, nsB := newNamespace(t), newNamespace(t)

	// The kubelets may request tokens for the audience: the RBAC deploy --service-account-auth applies.
	role, bindings := deploy.ServiceAccountRBAC("e2e", "satoken", "default", saAudience)
	ctx := context.Background()
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, bindings[0], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), bindings[0].Name, metav1.DeleteOptions{})
	})

	dir := t.TempDir()
	policyFile := filepath.Join(dir, "access-policy.yaml")
	writePolicy := func(t *testing.T, namespaces ...string) {
		t.Helper()
		p := "rules:\n  - users: [admin]\n    repos: [\"**\"]\n    actions: [\"*\"]\n  - namespaces: [" + strings.Join(namespaces, ", ") + "]\n    repos: [\"team-a/**\"]\n    actions: [pull]\n"
		tmp := policyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, policyFile); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(t, nsA)
	reg := startServe(t, "--access-policy", policyFile, "--service-account-audience", saAudience, "--service-account-kubeconfig", kc)
	if !strings.Contains(reg.Output(), "accepting Kubernetes service account tokens") {
		t.Fatalf("serve does not say it accepts tokens:\n%s", reg.Output())
	}
	trustRegistry(t, reg.Addr)
	ref := pushTestApp(t, reg.Addr, reg.User, reg.Password, "team-a/app")

	t.Run("tokens the registry must refuse", func(t *testing.T) {
		good := requestToken(t, cs, nsA, saAudience)
		if code := v2Status(t, reg.Addr, good); code != http.StatusOK {
			t.Fatalf("a token of %s/default for %s: GET /v2/ -> %d, want 200", nsA, saAudience, code)
		}
		apiToken := requestToken(t, cs, nsA, "") // the API server's own audience
		forged, expired := clusterSignedTokens(t, cs, env.get(t, "CLUSTER_DIR"), nsA)
		for name, tok := range map[string]string{"another audience": apiToken, "forged with another key": forged, "expired": expired} {
			if code := v2Status(t, reg.Addr, tok); code != http.StatusUnauthorized {
				t.Errorf("%s: GET /v2/ -> %d, want 401", name, code)
			}
		}
		for _, reason := range []string{"reason=audience", "reason=signature", "reason=expired"} {
			// The log reaches the test through a pipe: give it a moment.
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(reg.Output(), reason) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(reg.Output(), reason) {
				t.Errorf("the registry log does not say %s:\n%s", reason, reg.Output())
			}
		}
	})

	// The node: the plugin in the bin dir under its provider name, and the generated config (no credentials file).
	binDir := installCredentialProvider(t, dir)
	config, _ := runPullSecretRK(t, "", nil, false, "credential-provider", "config", "--match", reg.Addr,
		"--service-account-tokens", "--audience", saAudience)
	configFile := filepath.Join(dir, "credential-provider-config.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restartKubelet(t) })
	restartKubelet(t, "--image-credential-provider-config="+configFile, "--image-credential-provider-bin-dir="+binDir)

	t.Run("namespace A pulls with its own token", func(t *testing.T) {
		createPod(t, cs, nsA, "app", ref, "")
		waitPodPhase(t, cs, nsA, "app", corev1.PodRunning)
	})

	t.Run("namespace B is denied by the policy, and doctor says so", func(t *testing.T) {
		createPod(t, cs, nsB, "app", ref, "")
		st := waitPodWaitingReason(t, cs, nsB, "app", "ErrImagePull", "ImagePullBackOff")
		if msgs := st.State.Waiting.Message + "\n" + podEventMessages(t, cs, nsB, "app"); !strings.Contains(strings.ToLower(msgs), "403 forbidden") {
			t.Errorf("pull failed, but not with 403 Forbidden from the registry:\n%s", describePod(cs, nsB, "app"))
		}
		res := runDoctorBinary(t, "-n", nsB, "app", "--service-account-audience", saAudience)
		assertCauses(t, res, doctor.CauseAccessDenied)
		for _, s := range []string{"system:serviceaccount:" + nsB + ":default", "- namespaces: [" + nsB + "]", `repos: ["team-a/app"]`} {
			if !strings.Contains(res.text(), s) {
				t.Errorf("doctor's report lacks %q:\n%s", s, res.text())
			}
		}
	})

	t.Run("once the policy grants namespace B, a new pod runs", func(t *testing.T) {
		writePolicy(t, nsA, nsB)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(reg.Output(), "reloaded access policy") && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		createPod(t, cs, nsB, "app2", ref, "")
		waitPodPhase(t, cs, nsB, "app2", corev1.PodRunning)
	})

	if strings.Contains(reg.Output(), "eyJ") {
		t.Error("the registry log contains a token")
	}
}

// requestToken is a TokenRequest for namespace ns's default ServiceAccount ("" audience: the API server's).
func requestToken(t *testing.T, cs kubernetes.Interface, ns, audience string) string {
	t.Helper()
	spec := authenticationv1.TokenRequestSpec{}
	if audience != "" {
		spec.Audiences = []string{audience}
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "default", &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token of %s/default: %v", ns, err)
	}
	return tr.Status.Token
}

// clusterSignedTokens makes two tokens with the claims of a real one for ns/default: one signed by another key
// under the cluster key's id, one expired an hour ago but signed with the cluster's real service-account key.
func clusterSignedTokens(t *testing.T, cs kubernetes.Interface, clusterDir, ns string) (forged, expired string) {
	t.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath(satoken.JWKSPath).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("reading the cluster's JWKS: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("the cluster's JWKS: %v (%d keys)", err, len(set.Keys))
	}
	kid := set.Keys[0].KeyID
	pemBytes, err := os.ReadFile(filepath.Join(clusterDir, "pki", "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("sa.key holds no PEM block")
	}
	var real any
	if real, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if real, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			if real, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
				t.Fatalf("parsing sa.key: %v", err)
			}
		}
	}
	// The forger uses the cluster's kind of key and algorithm (up.sh makes an ECDSA P-256 key), only not its key.
	var other any
	if _, ok := real.(*ecdsa.PrivateKey); ok {
		other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		other, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	raw, err = cs.CoreV1().RESTClient().Get().AbsPath(satoken.DiscoveryPath).DoRaw(context.Background())
	if err != nil || json.Unmarshal(raw, &disc) != nil {
		t.Fatalf("reading the cluster's discovery document: %v", err)
	}
	sign := func(key any, exp time.Time) string {
		alg := jose.RS256
		if _, ok := key.(*ecdsa.PrivateKey); ok {
			alg = jose.ES256
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		c := jwt.Claims{Issuer: disc.Issuer, Subject: "system:serviceaccount:" + ns + ":default", Audience: jwt.Audience{saAudience},
			IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour)), NotBefore: jwt.NewNumericDate(exp.Add(-time.Hour)), Expiry: jwt.NewNumericDate(exp)}
		s, err := jwt.Signed(signer).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return sign(other, time.Now().Add(time.Hour)), sign(real, time.Now().Add(-time.Hour))
}

// v2Status is the registry's answer to GET /v2/ with token as the ServiceAccount credential.
func v2Status(t *testing.T, addr, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	req.SetBasicAuth(satoken.Username, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDeployServiceAccountAuthDryRun: the API server accepts what deploy --service-account-auth applies (the
// registry's flags and token mount, the ClusterRole for the kubelets' audience and both bindings).
func TestDeployServiceAccountAuthDryRun(t *testing.T) {
	ns := newNamespace(t)
	r := depRun(t, "", "deploy", "-n", ns, "--service-account-auth", "--service-account-audience", saAudience,
		"--dry-run=server", "-o", "yaml", "--node-port", "0")
	if r.err != nil {
		t.Fatalf("deploy --service-account-auth --dry-run=server: %v\n%s", r.err, depRedact(r.out))
	}
	for _, want := range []string{"--service-account-audience=" + saAudience, "automountServiceAccountToken: true",
		"kind: ClusterRole\n", "- request-serviceaccounts-token-audience", "- " + saAudience, "name: system:nodes",
		"name: system:service-account-issuer-discovery"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the dry run lacks %q:\n%s", want, depRedact(r.out))
		}
	}
}
