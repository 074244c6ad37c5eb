package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

// checkRegistry runs the network and credential checks and returns the accepted authentication (nil when the
// manifest cannot be checked).
func (r *imageRun) checkRegistry(ctx context.Context, live bool) *authResult {
	matches := r.f.keyring.Lookup(r.c.Image)
	r.matched = len(matches) > 0
	if !live {
		why := r.skipReason(live)
		r.add(Check{Name: CheckNetwork, Status: Skip, Message: "not checked: " + why})
		r.offlineCredentials(matches, why)
		return nil
	}
	reach := r.d.probe.ping(ctx, r.host)
	if reach.cause != "" {
		r.add(Check{Name: CheckNetwork, Status: r.severity(), Cause: reach.cause, Message: reach.msg, Fix: networkFix(reach.cause, r.host)})
		r.add(Check{Name: CheckCredentials, Status: Skip, Message: "not checked: the registry cannot be reached"})
		return nil
	}
	r.add(Check{Name: CheckNetwork, Status: Pass, Message: reach.msg})
	repo := r.ref.Context()

	if len(matches) == 0 {
		anon := r.d.probe.authenticate(ctx, repo, authn.Anonymous)
		if anon.cause == "" {
			// /v2/ may be open while pulls are not; the manifest check with the anonymous transport tells.
			r.add(Check{Name: CheckCredentials, Status: Pass, Message: fmt.Sprintf("no pull secret entry matches %s; it answers anonymous requests", r.host)})
			return &anon
		}
		if r.d.opts.ServiceAccountAudience != "" && anon.cause == CauseCredentialsRejected {
			return r.checkServiceAccountToken(ctx)
		}
		r.noCredentials(anon)
		return nil
	}
	var tried []string
	for _, m := range matches {
		res := r.d.probe.authenticate(ctx, repo, authn.FromConfig(authConfig(m.Credential)))
		r.d.opts.Logger.Debug("tried pull secret entry", "source", m.Source, "key", m.Key, "cause", res.cause) // never the credential
		if res.cause == "" {
			res.user = m.Credential.Username
			r.add(Check{Name: CheckCredentials, Status: Pass, Message: fmt.Sprintf("%s entry %q matches %s and %s", m.Source, m.Key, r.host, res.msg)})
			return &res
		}
		if res.cause != CauseCredentialsRejected {
			r.add(Check{Name: CheckCredentials, Status: r.severity(), Cause: res.cause, Message: fmt.Sprintf("%s entry %q: %s", m.Source, m.Key, res.msg), Fix: networkFix(res.cause, r.host)})
			return nil
		}
		tried = append(tried, fmt.Sprintf("%s entry %q (user %q)", m.Source, m.Key, m.Credential.Username))
	}
	src := strings.TrimPrefix(matches[0].Source, "secret ")
	r.add(Check{Name: CheckCredentials, Status: r.severity(), Cause: CauseCredentialsRejected,
		Message: fmt.Sprintf("%s rejects the credentials of %s (checked live with GET /v2/)", r.host, strings.Join(tried, ", ")),
		Fix:     r.createFix(src, r.host, matches[0].Credential.Username) + " --overwrite   (with the right password)"})
	return nil
}

// noCredentials reports an image whose registry wants credentials the pod does not give it.
func (r *imageRun) noCredentials(anon authResult) {
	if anon.cause != CauseCredentialsRejected {
		r.add(Check{Name: CheckCredentials, Status: r.severity(), Cause: anon.cause, Message: anon.msg, Fix: networkFix(anon.cause, r.host)})
		return
	}
	if len(r.f.saRing.Lookup(r.c.Image)) > 0 && len(r.f.keyring.Lookup(r.c.Image)) == 0 {
		r.add(Check{Name: CheckCredentials, Status: Skip, Message: fmt.Sprintf("the pod has no credentials for %s; its serviceaccount's secret does (see %s)", r.host, CheckServiceAccount)})
		return
	}
	for _, s := range r.f.secrets {
		if s.cause != "" {
			r.add(Check{Name: CheckCredentials, Status: Skip, Message: fmt.Sprintf("%s requires credentials and the pod has none usable: fix the pull secret problems above", r.host)})
			return
		}
	}
	msg := fmt.Sprintf("%s requires credentials and no pull secret entry matches it", r.host)
	if len(r.f.secrets) == 0 {
		msg = fmt.Sprintf("%s requires credentials and the pod has no imagePullSecrets", r.host)
	}
	var keys []string
	hub := false
	for _, s := range r.f.secrets {
		for _, k := range s.config.Keys() {
			keys = append(keys, fmt.Sprintf("%s: %q", s.name, k))
			hub = hub || dockerconfig.IsDockerHub(k)
		}
	}
	if len(keys) > 0 {
		msg += fmt.Sprintf(" (entries: %s; the kubelet needs the exact host:port %s)", strings.Join(keys, ", "), r.host)
	}
	if hub {
		msg += "; an entry for Docker Hub (https://index.docker.io/v1/) is what kubectl writes when --docker-server is left out"
	}
	name := "regcred"
	if len(r.f.secrets) > 0 {
		name = r.f.secrets[0].name
	}
	fix := r.createFix(name, r.host, "USER")
	if len(r.f.secrets) > 0 {
		fix += " --overwrite"
	} else {
		fix += fmt.Sprintf(" --service-account %s, then %s", r.f.saName, r.recreateFix())
	}
	r.add(Check{Name: CheckCredentials, Status: r.severity(), Cause: CauseNoCredentials, Message: msg, Fix: fix})
}

func (r *imageRun) offlineCredentials(matches []dockerconfig.Match, why string) {
	if len(matches) > 0 {
		r.add(Check{Name: CheckCredentials, Status: Pass, Message: fmt.Sprintf("%s entry %q matches %s (not checked live: %s)", matches[0].Source, matches[0].Key, r.host, why)})
		return
	}
	r.add(Check{Name: CheckCredentials, Status: Skip, Message: fmt.Sprintf("no pull secret entry matches %s; whether it needs one was not checked: %s", r.host, why)})
}

func authConfig(c dockerconfig.Credential) authn.AuthConfig {
	return authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
}

func (r *imageRun) checkManifest(ctx context.Context, a *authResult) {
	cause, msg := r.d.probe.headManifest(ctx, r.ref, a.rt)
	switch cause {
	case "":
		r.add(Check{Name: CheckManifest, Status: Pass, Message: msg})
	case CauseCredentialsRejected:
		if !r.matched {
			cause = CauseNoCredentials
			msg = fmt.Sprintf("%s requires credentials to pull %s and no pull secret entry matches it", r.host, r.ref.Context().RepositoryStr())
		}
		r.add(Check{Name: CheckManifest, Status: r.severity(), Cause: cause, Message: msg, Fix: r.createFix("regcred", r.host, "USER")})
	case CauseAccessDenied:
		r.add(Check{Name: CheckManifest, Status: r.severity(), Cause: cause, Message: msg, Fix: accessFix(a.user, r.ref.Context().RepositoryStr())})
	case CauseImageNotFound:
		r.add(Check{Name: CheckManifest, Status: r.severity(), Cause: cause, Message: msg,
			Fix: fmt.Sprintf("push it (docker push %s) or fix the tag; list tags with: crane ls %s", r.c.Image, r.ref.Context().Name())})
	default:
		r.add(Check{Name: CheckManifest, Status: r.severity(), Cause: cause, Message: msg, Fix: networkFix(cause, r.host)})
	}
}

func networkFix(c Cause, host string) string {
	switch c {
	case CauseDNS:
		return fmt.Sprintf("use a registry host the nodes can resolve, or add %s to DNS (the node's /etc/hosts or cluster DNS)", hostOnly(host))
	case CauseConnectionRefused:
		return fmt.Sprintf("start the registry or fix the port: nothing listens on %s (kubectl get svc,pods -A | grep registry)", host)
	case CauseTimeout:
		return fmt.Sprintf("check that %s is reachable from the nodes (firewall, routes, NetworkPolicy)", host)
	case CauseTLSUntrusted:
		return fmt.Sprintf("trust the registry's CA on every node: for a registry registry-kit deployed, registry-kit nodes trust -n NAMESPACE "+
			"(or deploy --configure-nodes); else /etc/containerd/certs.d/%s/hosts.toml with ca = \"/path/ca.crt\" (and pass --ca-file to doctor)", host)
	case CauseHTTPServed:
		return fmt.Sprintf("serve TLS on %s, or mark it plain-HTTP on every node: /etc/containerd/certs.d/%s/hosts.toml with [host.\"http://%s\"] (and pass --insecure-registry %s to doctor)", host, host, host, host)
	}
	return ""
}

func hostOnly(hostport string) string {
	if i := strings.LastIndex(hostport, ":"); i > 0 && !strings.HasSuffix(hostport, "]") {
		return hostport[:i]
	}
	return hostport
}

// accessFix is the access policy rule that lets user pull repo (registry-kit serve's policy; for another registry
// its own access control says the same).
func accessFix(user, repo string) string {
	if ns, sa, ok := access.ParseServiceAccount(user); ok {
		return fmt.Sprintf("allow %s to pull %s: add to the registry's access policy (access-policy.yaml next to htpasswd; "+
			"deployed: kubectl edit secret registry-htpasswd -n docker-registry)\n"+
			"  - namespaces: [%s]            # or serviceAccounts: [%s/%s]\n    repos: [%q]\n    actions: [pull]", user, repo, ns, ns, sa, repo)
	}
	if user == "" {
		user = "USER"
	}
	return fmt.Sprintf("allow user %q to pull %s: add to the registry's access policy (access-policy.yaml next to htpasswd; "+
		"deployed: kubectl edit secret registry-htpasswd -n docker-registry)\n"+
		"  - users: [%s]\n    repos: [%q]\n    actions: [pull]\n"+
		"or: registry-kit htpasswd add --file htpasswd --user %s --role pull --repos %q", user, repo, user, repo, user, repo)
}
