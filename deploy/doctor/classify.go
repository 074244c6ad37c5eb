package doctor

import (
	"fmt"
	"strings"
)

// eventCauses maps a kubelet event class to the causes that explain it.
var eventCauses = map[EventClass][]Cause{
	EventUnauthorized: {CauseNoCredentials, CauseCredentialsRejected, CauseAccessDenied, CauseSecretMissing, CauseSecretType, CauseSecretMalformed, CauseServiceAccountDrift,
		CauseNodeAudienceDenied, CauseKubeletNoToken, CauseTokenRejected},
	EventNotFound:     {CauseImageNotFound},
	EventDNS:          {CauseDNS, CauseNoRegistryHost},
	EventRefused:      {CauseConnectionRefused, CauseNoRegistryHost},
	EventTimeout:      {CauseTimeout, CauseNoRegistryHost},
	EventTLSUntrusted: {CauseTLSUntrusted},
	EventHTTPServed:   {CauseHTTPServed},
	EventInvalidName:  {CauseInvalidImage},
	EventOther:        {},
}

var eventWords = map[EventClass]string{
	EventUnauthorized: "the registry refused the node's credentials (401/403)",
	EventNotFound:     "the image (tag, digest or repository) was not found",
	EventDNS:          "the registry host does not resolve on the node",
	EventRefused:      "the node's connection to the registry was refused",
	EventTimeout:      "the registry did not answer the node in time",
	EventTLSUntrusted: "the node does not trust the registry's TLS certificate",
	EventHTTPServed:   "the node spoke HTTPS and the registry answered plain HTTP",
	EventInvalidName:  "the image reference does not parse",
	EventOther:        "the pull failed for a reason doctor does not recognise",
}

// settleSecretChecks turns secret problems into warnings when the image's credentials work anyway, so they are not
// named as the reason an image cannot be pulled.
func (r *imageRun) settleSecretChecks() {
	// Either the registry took the credentials and has the image, or another pull secret has an entry for this
	// registry that was not rejected: the broken secret is then not what stops the pull.
	credsOK := r.matched
	for _, c := range r.ir.Checks {
		if c.Name == CheckCredentials && c.Status == Pass && r.hasManifestPass() {
			credsOK = true
		}
		if c.Cause == CauseCredentialsRejected || c.Cause == CauseNoCredentials {
			credsOK = false
			break
		}
	}
	if !credsOK {
		return
	}
	for i, c := range r.ir.Checks {
		if (c.Name == CheckSecretsExist || c.Name == CheckSecretFormat) && c.Status == Fail {
			r.ir.Checks[i].Status = Warn
			r.ir.Checks[i].Message += fmt.Sprintf(" (not needed for this image: another pull secret has an entry for %s)", r.host)
		}
	}
}

func (r *imageRun) hasManifestPass() bool {
	for _, c := range r.ir.Checks {
		if c.Name == CheckManifest && c.Status == Pass {
			return true
		}
	}
	return false
}

// checkEvent reports what the kubelet said. When the checks above already explain it, the event check only confirms
// them; when they do not (doctor sees the registry differently from the node), the event's cause is named.
func (r *imageRun) checkEvent() {
	if r.ir.Event == "" {
		if r.failing && len(causesOf(r.ir.Checks)) == 0 {
			r.add(Check{Name: CheckEvent, Status: Fail, Cause: CauseUnknown,
				Message: "the kubelet reports a pull failure, no error text was found, and doctor's checks pass"})
		}
		return
	}
	words := eventWords[r.ir.EventClass]
	if h := hostInMessage(r.ir.Event); h != "" && h != r.host {
		words += fmt.Sprintf(" (the kubelet talked to %s)", h)
	}
	found := causesOf(r.ir.Checks)
	if len(found) == 0 {
		cause := r.eventCause()
		msg := fmt.Sprintf("%s, but doctor's own checks from here pass: the node sees the registry differently (its DNS, certs.d/hosts.toml, proxy, or credentials cached since)", words)
		if r.d.opts.Offline {
			msg = words + " (registry not probed: offline)"
		}
		r.add(Check{Name: CheckEvent, Status: Fail, Cause: cause, Message: msg, Fix: r.eventFix(cause)})
		return
	}
	agree := false
	for _, c := range found {
		for _, e := range eventCauses[r.ir.EventClass] {
			agree = agree || c == e
		}
	}
	if agree {
		r.add(Check{Name: CheckEvent, Status: Fail, Message: words + " — explained above"})
		return
	}
	r.add(Check{Name: CheckEvent, Status: Warn, Message: words + " — not what the checks above found; the node may see the registry differently"})
}

func (r *imageRun) eventFix(c Cause) string {
	switch c {
	case CauseNoCredentials:
		return r.createFix("regcred", r.host, "USER") + fmt.Sprintf(" --service-account %s, then %s", r.f.saName, r.recreateFix())
	case CauseCredentialsRejected:
		return r.createFix("regcred", r.host, "USER") + " --overwrite   (with the right password)"
	case CauseImageNotFound:
		return fmt.Sprintf("push it (docker push %s) or fix the tag", r.c.Image)
	case CauseKubeletNoToken:
		return r.kubeletNoTokenFix() + "; a token the registry refused as expired means the node's or the registry's clock is off"
	}
	return networkFix(c, r.host)
}

// eventCause picks the cause for an event the live checks did not explain.
func (r *imageRun) eventCause() Cause {
	switch r.ir.EventClass {
	case EventUnauthorized:
		if r.matched {
			return CauseCredentialsRejected
		}
		if r.d.opts.ServiceAccountAudience != "" {
			return CauseKubeletNoToken
		}
		return CauseNoCredentials
	case EventOther, EventNone:
		return CauseUnknown
	}
	if cs := eventCauses[r.ir.EventClass]; len(cs) > 0 {
		return cs[0]
	}
	return CauseUnknown
}

func causesOf(checks []Check) []Cause {
	out := []Cause{} // [] rather than null in JSON
	seen := map[Cause]bool{}
	for _, c := range checks {
		if c.Status == Fail && c.Cause != "" && !seen[c.Cause] {
			seen[c.Cause] = true
			out = append(out, c.Cause)
		}
	}
	return out
}

func (r *imageRun) summary() string {
	if len(r.ir.Causes) > 0 {
		parts := make([]string, len(r.ir.Causes))
		for i, c := range r.ir.Causes {
			parts[i] = string(c)
		}
		return "cannot pull: " + strings.Join(parts, ", ")
	}
	switch r.ir.Pulling {
	case "ok":
		return "pulls fine"
	case "failing":
		return "the kubelet reports a pull failure doctor cannot explain"
	}
	return "no problem found: the image should pull"
}
