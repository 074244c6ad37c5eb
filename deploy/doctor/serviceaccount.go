package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/auth/satoken"
)

// The causes of the ServiceAccount-token path (the kubelet's credential provider passing the pod's token, KEP-4412).
const (
	// CauseNodeAudienceDenied: the API server does not let the kubelet request tokens for the registry's audience.
	CauseNodeAudienceDenied Cause = "node-audience-denied"
	// CauseKubeletNoToken: the registry accepts the pod's token, so the kubelet did not send one (too old, feature
	// off, no tokenAttributes in its credential provider config, or the plugin not installed).
	CauseKubeletNoToken Cause = "kubelet-no-token"
	// CauseTokenRejected: the registry refuses a fresh token of the pod's ServiceAccount (audience or issuer not the
	// ones it is configured for, or it does not accept ServiceAccount tokens).
	CauseTokenRejected Cause = "token-rejected"
)

// CheckServiceAccountToken is the check of the ServiceAccount-token path.
const CheckServiceAccountToken = "serviceaccount-token"

// nodeAudienceVerb is what RBAC must grant system:nodes on a resource named like the audience.
const nodeAudienceVerb = "request-serviceaccounts-token-audience"

// checkServiceAccountToken runs when the pod has no pull secret for a registry that wants credentials and
// Options.ServiceAccountAudience says pods pull with their ServiceAccount token. It checks what the kubelet
// would do: may the node request the audience, is the kubelet new enough, and does the registry accept a fresh
// token of the pod's ServiceAccount (then the manifest check shows what the access policy allows). It returns the
// accepted authentication, or nil.
func (r *imageRun) checkServiceAccountToken(ctx context.Context) *authResult {
	aud := r.d.opts.ServiceAccountAudience
	ns, sa := r.f.pod.Namespace, r.f.saName
	user := access.ServiceAccountUser(ns, sa)
	if !r.nodeMayRequest(ctx, aud) {
		return nil
	}
	tr, err := r.d.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{aud}, ExpirationSeconds: ptrInt64(600),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: r.f.pod.Name, UID: r.f.pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		r.add(Check{Name: CheckServiceAccountToken, Status: Skip, Message: fmt.Sprintf("cannot request a token of %s for audience %q to try it: %v", user, aud, err)})
		return nil
	}
	token := tr.Status.Token
	res := r.d.probe.authenticate(ctx, r.ref.Context(), &authn.Basic{Username: satoken.Username, Password: token})
	switch res.cause {
	case "":
		res.user = user
		r.add(Check{Name: CheckServiceAccountToken, Status: Pass, Message: fmt.Sprintf("%s accepts a fresh token of %s for audience %q", r.host, user, aud)})
		return &res
	case CauseCredentialsRejected:
		iss, auds := tokenClaims(token)
		r.add(Check{Name: CheckServiceAccountToken, Status: r.severity(), Cause: CauseTokenRejected,
			Message: fmt.Sprintf("%s refuses a fresh token of %s (issuer %q, audience %q): it does not accept ServiceAccount tokens, or expects another audience or issuer (its log says which: \"service account token refused\")",
				r.host, user, iss, strings.Join(auds, ",")),
			Fix: fmt.Sprintf("run the registry with --service-account-audience %s (and --service-account-issuer %s if given), or give the nodes' credential provider the registry's audience: registry-kit credential-provider config --match %s --service-account-tokens --audience <the registry's>", aud, iss, r.host)})
	default:
		r.add(Check{Name: CheckServiceAccountToken, Status: r.severity(), Cause: res.cause, Message: res.msg, Fix: networkFix(res.cause, r.host)})
	}
	return nil
}

// nodeMayRequest checks the pod's node may request tokens for aud (ServiceAccountNodeAudienceRestriction) and that
// its kubelet passes tokens to credential providers at all.
func (r *imageRun) nodeMayRequest(ctx context.Context, aud string) bool {
	nodeName := r.f.pod.Spec.NodeName
	if nodeName == "" {
		r.add(Check{Name: CheckServiceAccountToken, Status: Skip, Message: "the pod is not scheduled to a node yet"})
		return false
	}
	if node, err := r.d.cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err == nil {
		if v := node.Status.NodeInfo.KubeletVersion; v != "" && !kubeletPassesTokens(v) {
			r.add(Check{Name: CheckServiceAccountToken, Status: r.severity(), Cause: CauseKubeletNoToken,
				Message: fmt.Sprintf("node %s runs kubelet %s, which does not pass ServiceAccount tokens to credential providers (beta and on by default from 1.34; 1.33 needs the feature gate KubeletServiceAccountTokenForCredentialProviders)", nodeName, v),
				Fix:     "upgrade the node's kubelet to 1.34 or later, or give the pods a pull secret (registry-kit pull-secret create)"})
			return false
		}
	}
	sar, err := r.d.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "system:node:" + nodeName, Groups: []string{"system:nodes", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: nodeAudienceVerb, Resource: aud, Name: r.f.saName, Namespace: r.f.pod.Namespace},
	}}, metav1.CreateOptions{})
	switch {
	case err != nil:
		r.add(Check{Name: CheckServiceAccountToken, Status: Skip, Message: fmt.Sprintf("cannot check whether node %s may request tokens for audience %q: %v", nodeName, aud, err)})
	case !sar.Status.Allowed:
		r.add(Check{Name: CheckServiceAccountToken, Status: r.severity(), Cause: CauseNodeAudienceDenied,
			Message: fmt.Sprintf("the kubelet of node %s may not request ServiceAccount tokens for audience %q (the NodeRestriction admission plugin's ServiceAccountNodeAudienceRestriction needs RBAC verb %s on it), so it pulls with no credential", nodeName, aud, nodeAudienceVerb),
			Fix: fmt.Sprintf("registry-kit deploy --service-account-auth --service-account-audience %s, or: kubectl create clusterrole registry-kit-node-audience --verb=%s --resource=%s && kubectl create clusterrolebinding registry-kit-node-audience --clusterrole=registry-kit-node-audience --group=system:nodes",
				aud, nodeAudienceVerb, aud)})
		return false
	}
	return true
}

// kubeletPassesTokens reports whether a kubelet version (v1.34.2, v1.33.0-eks-...) passes tokens by default.
func kubeletPassesTokens(version string) bool {
	v := strings.TrimPrefix(version, "v")
	major, rest, _ := strings.Cut(v, ".")
	minorStr, _, _ := strings.Cut(rest, ".")
	maj, err1 := strconv.Atoi(major)
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(minorStr, func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return true // unknown: do not blame it
	}
	return maj > 1 || minor >= 34
}

// tokenClaims reads the issuer and audiences of the token doctor requested itself (not secret: they are the
// cluster's issuer and the audience asked for).
func tokenClaims(token string) (string, []string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", nil
	}
	var c struct {
		Iss string       `json:"iss"`
		Aud jwt.Audience `json:"aud"` // a string or a list
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss, c.Aud
}

// kubeletNoTokenFix is what to check on the node when the registry takes the pod's token but the pull failed.
func (r *imageRun) kubeletNoTokenFix() string {
	return fmt.Sprintf("on node %s: run the kubelet with --image-credential-provider-config holding registry-kit's entry (registry-kit credential-provider config --match %s --service-account-tokens --audience %s) and --image-credential-provider-bin-dir holding the registry-kit binary; the kubelet's log names the plugin's errors",
		r.f.pod.Spec.NodeName, r.host, r.d.opts.ServiceAccountAudience)
}

func ptrInt64(v int64) *int64 { return &v }
