package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

// Check names, in the order they appear.
const (
	CheckImage          = "image-reference"
	CheckSecretsExist   = "namespace-alignment"
	CheckSecretFormat   = "secret-format"
	CheckServiceAccount = "serviceaccount"
	CheckNetwork        = "registry-reachable"
	CheckCredentials    = "credentials"
	CheckManifest       = "image-exists"
	CheckEvent          = "kubelet-event"
)

// imageRun carries one image's diagnosis through its checks.
type imageRun struct {
	ctx     context.Context
	d       *diagnoser
	f       *podFacts
	c       corev1.Container
	ir      ImageReport
	failing bool
	host    string
	ref     name.Reference
	matched bool // some pod secret has an entry for the image
}

func (r *imageRun) add(ch Check) { r.ir.Checks = append(r.ir.Checks, ch) }

// severity is Fail while the image is not known to pull, Warn once it did: a problem that did not stop a pull is
// worth fixing but is not why anything is broken.
func (r *imageRun) severity() Status {
	if r.ir.Pulling == "ok" {
		return Warn
	}
	return Fail
}

func (d *diagnoser) image(ctx context.Context, f *podFacts, c corev1.Container) ImageReport {
	r := &imageRun{ctx: ctx, d: d, f: f, c: c, ir: ImageReport{Container: c.Name, Image: c.Image}}
	r.ir.Pulling, r.ir.Event = pullState(f, c)
	r.ir.EventClass = ClassifyEvent(r.ir.Event)
	r.failing = r.ir.Pulling == "failing"

	live := r.checkImage()
	r.checkSecrets()
	r.checkServiceAccount()
	r.checkPullSync()
	if auth := r.checkRegistry(ctx, live); auth != nil {
		r.checkManifest(ctx, auth)
	} else {
		r.add(Check{Name: CheckManifest, Status: Skip, Message: "not checked: " + r.skipReason(live)})
	}
	r.settleSecretChecks()
	r.checkEvent()
	r.ir.Causes = causesOf(r.ir.Checks)
	r.ir.Summary = r.summary()
	return r.ir
}

// checkImage parses the reference and reports whether live probes make sense for it.
func (r *imageRun) checkImage() bool {
	named, err := reference.ParseNormalizedNamed(r.c.Image)
	if err != nil {
		r.add(Check{Name: CheckImage, Status: Fail, Cause: CauseInvalidImage,
			Message: fmt.Sprintf("%q is not a valid image reference: %v", r.c.Image, err),
			Fix:     fmt.Sprintf("kubectl set image %s %s=HOST:PORT/REPOSITORY:TAG -n %s", r.owner(), r.c.Name, r.f.pod.Namespace)})
		return false
	}
	r.host = reference.Domain(named)
	r.ir.Registry = r.host
	full := reference.TagNameOnly(named).String()
	if !hasExplicitRegistry(r.c.Image) {
		if r.ir.Pulling == "ok" {
			r.add(Check{Name: CheckImage, Status: Pass, Message: fmt.Sprintf("no registry host: pulled from Docker Hub as %s", full)})
			return !r.d.opts.Offline
		}
		r.add(Check{Name: CheckImage, Status: r.severity(), Cause: CauseNoRegistryHost,
			Message: fmt.Sprintf("%q names no registry host, so the kubelet pulls it from Docker Hub as %s", r.c.Image, full),
			Fix: fmt.Sprintf("put the registry in the image: kubectl set image %s %s=HOST:PORT/%s -n %s",
				r.owner(), r.c.Name, reference.FamiliarString(named), r.f.pod.Namespace)})
		return false
	}
	opts := []name.Option{}
	if r.d.probe.allowHTTP(r.host) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(r.c.Image, opts...)
	if err != nil {
		r.add(Check{Name: CheckImage, Status: Fail, Cause: CauseInvalidImage, Message: fmt.Sprintf("parsing %q: %v", r.c.Image, err)})
		return false
	}
	r.ref = ref
	r.add(Check{Name: CheckImage, Status: Pass, Message: fmt.Sprintf("registry %s, repository %s", r.host, reference.Path(named))})
	return !r.d.opts.Offline
}

// hasExplicitRegistry applies the docker rule: the first path component is a registry when it has a dot or a colon
// or is "localhost".
func hasExplicitRegistry(image string) bool {
	first, _, found := strings.Cut(image, "/")
	return found && (strings.ContainsAny(first, ".:") || first == "localhost")
}

func (r *imageRun) skipReason(live bool) string {
	switch {
	case r.d.opts.Offline:
		return "offline (no live registry probes)"
	case !live:
		return "fix the image reference first"
	}
	return "the registry could not be used (see above)"
}

func (r *imageRun) checkSecrets() {
	ns := r.f.pod.Namespace
	if len(r.f.secrets) == 0 {
		r.add(Check{Name: CheckSecretsExist, Status: Pass, Message: "the pod lists no imagePullSecrets"})
		r.add(Check{Name: CheckSecretFormat, Status: Skip, Message: "no pull secrets to check"})
		return
	}
	var missing, present []string
	var fixes []string
	for _, s := range r.f.secrets {
		if s.cause != CauseSecretMissing {
			present = append(present, s.name)
			continue
		}
		where, known := r.d.otherNamespaces(r.ctx, ns, s.name)
		msg := fmt.Sprintf("secret %q is not in the pod's namespace %q", s.name, ns)
		switch {
		case len(where) > 0:
			list := where
			if len(list) > 5 {
				list = append(list[:5:5], fmt.Sprintf("and %d more", len(where)-5))
			}
			// Only the name matches: the pod's author chose it, and the secret elsewhere holds someone else's
			// credentials, possibly for another registry. Never suggest copying it.
			msg += fmt.Sprintf("; a secret of that name exists elsewhere, in namespace(s) %s, but a pod can only use secrets of its own "+
				"namespace: create one in %q with your own credentials rather than copying another namespace's", strings.Join(list, ", "), ns)
		case known:
			msg += "; no namespace has a secret of that name"
		}
		fixes = append(fixes, r.createFix(s.name, r.host, "USER"))
		missing = append(missing, msg)
	}
	if len(missing) > 0 {
		r.add(Check{Name: CheckSecretsExist, Status: r.severity(), Cause: CauseSecretMissing,
			Message: strings.Join(missing, "; "), Fix: strings.Join(fixes, "\n      or: ")})
	} else {
		r.add(Check{Name: CheckSecretsExist, Status: Pass, Message: fmt.Sprintf("secret(s) %s exist in namespace %q", strings.Join(present, ", "), ns)})
	}
	r.checkSecretFormat()
}

func (r *imageRun) checkSecretFormat() {
	var good []string
	checked := false
	for _, s := range r.f.secrets {
		switch s.cause {
		case CauseSecretType:
			checked = true
			r.add(Check{Name: CheckSecretFormat, Status: r.severity(), Cause: CauseSecretType,
				Message: fmt.Sprintf("secret %q is not of type %s (or %s), %s: the kubelet ignores it", s.name, dockerconfig.SecretTypeDockerConfigJSON, dockerconfig.SecretTypeDockercfg, s.detail),
				Fix:     fmt.Sprintf("kubectl delete secret %s -n %s && %s", s.name, r.f.pod.Namespace, r.createFix(s.name, r.host, "USER"))})
		case CauseSecretMalformed:
			checked = true
			r.add(Check{Name: CheckSecretFormat, Status: r.severity(), Cause: CauseSecretMalformed,
				Message: fmt.Sprintf("secret %q is unusable: %s (contents not shown)", s.name, s.detail),
				Fix:     r.createFix(s.name, r.host, "USER") + " --overwrite"})
		case "":
			checked = true
			good = append(good, s.name)
		}
	}
	if len(good) > 0 {
		r.add(Check{Name: CheckSecretFormat, Status: Pass, Message: fmt.Sprintf("secret(s) %s: type and %s are valid", strings.Join(good, ", "), dockerconfig.DockerConfigJSONKey)})
	} else if !checked {
		r.add(Check{Name: CheckSecretFormat, Status: Skip, Message: "no pull secret could be read"})
	}
}

func (r *imageRun) createFix(secret, host, user string) string {
	if host == "" {
		host = "HOST:PORT"
	}
	return fmt.Sprintf("registry-kit pull-secret create %s --server %s --username %s --password-stdin -n %s", secret, host, user, r.f.pod.Namespace)
}

// owner names what kubectl should act on for this pod: its Deployment when there is one, else the pod.
func (r *imageRun) owner() string {
	for _, o := range r.f.pod.OwnerReferences {
		if o.Kind == "ReplicaSet" {
			if i := strings.LastIndex(o.Name, "-"); i > 0 {
				return "deployment/" + o.Name[:i]
			}
		}
	}
	return "pod/" + r.f.pod.Name
}

func (r *imageRun) recreateFix() string {
	if o := r.owner(); strings.HasPrefix(o, "deployment/") {
		return fmt.Sprintf("kubectl rollout restart %s -n %s", o, r.f.pod.Namespace)
	}
	if len(r.f.pod.OwnerReferences) > 0 {
		return fmt.Sprintf("kubectl delete pod %s -n %s  (its controller creates a new one)", r.f.pod.Name, r.f.pod.Namespace)
	}
	return fmt.Sprintf("kubectl get pod %s -n %s -o yaml | kubectl replace --force -f -", r.f.pod.Name, r.f.pod.Namespace)
}

func (r *imageRun) checkServiceAccount() {
	if len(r.f.saOnly) == 0 {
		r.add(Check{Name: CheckServiceAccount, Status: Pass, Message: fmt.Sprintf("serviceaccount %q lists no pull secret the pod lacks", r.f.saName)})
		return
	}
	msg := fmt.Sprintf("serviceaccount %q lists %s, which the pod does not have: pull secrets are copied from the "+
		"serviceaccount only when a pod is created (and only if the pod lists none itself)", r.f.saName, strings.Join(r.f.saOnly, ", "))
	st := Warn
	var cause Cause
	if r.failing && len(r.f.saRing.Lookup(r.c.Image)) > 0 && len(r.f.keyring.Lookup(r.c.Image)) == 0 {
		st, cause = Fail, CauseServiceAccountDrift
		msg = "the serviceaccount was given pull secrets after the pod was created: " + msg
	}
	fix := "recreate the pod: " + r.recreateFix()
	if len(r.f.pod.Spec.ImagePullSecrets) > 0 {
		fix += fmt.Sprintf("; the pod lists its own imagePullSecrets, so also add %s to its spec", strings.Join(r.f.saOnly, ", "))
	}
	r.add(Check{Name: CheckServiceAccount, Status: st, Cause: cause, Message: msg, Fix: fix})
}
