package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Cause names one reason a pod cannot pull an image; callers and tests branch on these.
type Cause string

// The causes doctor can name.
const (
	CauseSecretMissing       Cause = "secret-missing"         // a referenced Secret is not in the pod's namespace
	CauseSecretType          Cause = "secret-type"            // the Secret is not kubernetes.io/dockerconfigjson or dockercfg
	CauseSecretMalformed     Cause = "secret-malformed"       // missing data key or JSON that does not parse
	CauseServiceAccountDrift Cause = "serviceaccount-patched" // the ServiceAccount got pull secrets after the pod was created
	CauseNoCredentials       Cause = "no-credentials"         // the registry needs credentials and no auths entry matches its host
	CauseCredentialsRejected Cause = "credentials-rejected"   // the registry (or its token server) rejects the credentials
	CauseAccessDenied        Cause = "access-denied"          // valid credentials the registry's access policy does not let pull (403)
	CauseNoRegistryHost      Cause = "no-registry-host"       // the image names no registry, so it goes to Docker Hub
	CauseImageNotFound       Cause = "image-not-found"        // the repository, tag or digest does not exist
	CauseInvalidImage        Cause = "invalid-image"          // the image reference does not parse
	CauseDNS                 Cause = "dns"                    // the registry host does not resolve
	CauseConnectionRefused   Cause = "connection-refused"     // nothing answers on the registry's port
	CauseTimeout             Cause = "timeout"                // the registry does not answer in time
	CauseTLSUntrusted        Cause = "tls-untrusted"          // the registry's certificate is not trusted
	CauseHTTPServed          Cause = "http-served"            // HTTPS expected, plain HTTP served
	CauseUnknown             Cause = "unknown"                // the kubelet reports a failure doctor cannot explain
)

// Check is one step of the diagnosis of one container image.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Cause   Cause  `json:"cause,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// ImageReport is the diagnosis of one container's image.
type ImageReport struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	Registry  string `json:"registry,omitempty"`
	// Pulling is "ok" when the image was pulled, "failing" when the kubelet reports a pull failure, "pending" otherwise.
	Pulling string `json:"pulling"`
	// Event is the latest pull-failure text the kubelet reported for this image, and EventClass what it says.
	Event      string     `json:"event,omitempty"`
	EventClass EventClass `json:"eventClass,omitempty"`
	Checks     []Check    `json:"checks"`
	// Causes lists what stops this image from being pulled, empty when nothing does.
	Causes  []Cause `json:"causes"`
	Summary string  `json:"summary"`
}

// PodReport is the diagnosis of one pod.
type PodReport struct {
	Namespace string        `json:"namespace"`
	Name      string        `json:"name"`
	Images    []ImageReport `json:"images"`
}

// Report is the result of Run.
type Report struct {
	Pods []PodReport `json:"pods"`
	// Notes are things doctor could not look at (e.g. no RBAC to list Secrets cluster-wide).
	Notes []string `json:"notes,omitempty"`
}

// Problems reports whether any image has a cause that stops it from being pulled, or any check failed.
func (r *Report) Problems() bool {
	for _, p := range r.Pods {
		for _, im := range p.Images {
			if len(im.Causes) > 0 {
				return true
			}
			for _, c := range im.Checks {
				if c.Status == Fail {
					return true
				}
			}
		}
	}
	return false
}

// Causes returns every distinct cause in the report, in order of first appearance.
func (r *Report) Causes() []Cause {
	var out []Cause
	seen := map[Cause]bool{}
	for _, p := range r.Pods {
		for _, im := range p.Images {
			for _, c := range im.Causes {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}

var marks = map[Status]string{Pass: "✓ PASS", Fail: "✗ FAIL", Warn: "! WARN", Skip: "- SKIP"}

// WriteText writes the report for a person: per pod and image, one aligned line per check, the fix under each
// failing or warning check, and a summary line.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	if len(r.Pods) == 0 {
		b.WriteString("no pod to diagnose: none of the namespace's pods is failing to pull an image\n")
	}
	for i, p := range r.Pods {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "pod %s/%s\n", p.Namespace, p.Name)
		for _, im := range p.Images {
			fmt.Fprintf(&b, "  container %s  image %s  (pull: %s)\n", im.Container, im.Image, im.Pulling)
			if im.Event != "" {
				fmt.Fprintf(&b, "    kubelet: %s\n", im.Event)
			}
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			for _, c := range im.Checks {
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", marks[c.Status], c.Name, c.Message)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, c := range im.Checks {
				if c.Fix != "" && (c.Status == Fail || c.Status == Warn) {
					fmt.Fprintf(&b, "    fix (%s): %s\n", c.Name, c.Fix)
				}
			}
			fmt.Fprintf(&b, "    => %s\n", im.Summary)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
