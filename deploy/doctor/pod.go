package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
)

type diagnoser struct {
	cs     kubernetes.Interface
	opts   Options
	probe  *prober
	report *Report
	// elsewhere caches, per Secret name, the other namespaces holding a Secret of that name.
	elsewhere map[string][]string
	// syncCtls are the pull-secret controllers in the cluster, read once (syncRead).
	syncCtls  []syncController
	syncRead  bool
	notedRBAC bool
}

// podFacts is what doctor reads about a pod once and uses for each of its images.
type podFacts struct {
	pod      *corev1.Pod
	events   []corev1.Event
	secrets  []secretFacts // the pod's imagePullSecrets, in order
	saOnly   []string      // Secrets the ServiceAccount lists that the pod does not
	saName   string
	keyring  dockerconfig.Keyring // the usable pod secrets, as the kubelet builds it
	saRing   dockerconfig.Keyring // the ServiceAccount-only secrets
	problems []Check              // secret and ServiceAccount checks, shared by all images
}

type secretFacts struct {
	name   string
	cause  Cause  // "" when usable
	detail string // what is wrong, never quoting the Secret's data
	config *dockerconfig.Config
}

func (d *diagnoser) pod(ctx context.Context, pod *corev1.Pod) (PodReport, error) {
	f := &podFacts{pod: pod}
	if err := d.readEvents(ctx, f); err != nil {
		return PodReport{}, err
	}
	if err := d.readSecrets(ctx, f); err != nil {
		return PodReport{}, err
	}
	if err := d.readServiceAccount(ctx, f); err != nil {
		return PodReport{}, err
	}
	pr := PodReport{Namespace: pod.Namespace, Name: pod.Name}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		pr.Images = append(pr.Images, d.image(ctx, f, c))
	}
	return pr, nil
}

func (d *diagnoser) readEvents(ctx context.Context, f *podFacts) error {
	list, err := d.cs.CoreV1().Events(f.pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + f.pod.Name,
	})
	if apierrors.IsForbidden(err) {
		d.note("cannot list events in namespace %q (RBAC): the kubelet's own error text is not used", f.pod.Namespace)
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing events: %w", err)
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == f.pod.Name && (e.InvolvedObject.UID == "" || e.InvolvedObject.UID == f.pod.UID) {
			f.events = append(f.events, e)
		}
	}
	sort.SliceStable(f.events, func(i, j int) bool { return eventTime(&f.events[i]).Time.Before(eventTime(&f.events[j]).Time) })
	return nil
}

func eventTime(e *corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case e.EventTime.Time.IsZero():
		return e.CreationTimestamp
	}
	return metav1.Time{Time: e.EventTime.Time}
}

func (d *diagnoser) readSecrets(ctx context.Context, f *podFacts) error {
	for _, ref := range f.pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		sf, err := d.readSecret(ctx, f.pod.Namespace, ref.Name)
		if err != nil {
			return err
		}
		f.secrets = append(f.secrets, sf)
		if sf.config != nil {
			f.keyring.Add("secret "+ref.Name, sf.config)
		}
	}
	return nil
}

// readSecret fetches and parses one pull Secret; a problem with it is recorded in its cause, not returned.
func (d *diagnoser) readSecret(ctx context.Context, ns, name string) (secretFacts, error) {
	sf := secretFacts{name: name}
	s, err := d.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sf.cause = CauseSecretMissing
		return sf, nil
	case apierrors.IsForbidden(err):
		d.note("cannot read secret %q in namespace %q (RBAC): its checks are skipped", name, ns)
		sf.cause = CauseUnknown
		return sf, nil
	case err != nil:
		return sf, fmt.Errorf("getting secret %q in namespace %q: %w", name, ns, err)
	}
	if string(s.Type) != dockerconfig.SecretTypeDockerConfigJSON && string(s.Type) != dockerconfig.SecretTypeDockercfg {
		sf.cause, sf.detail = CauseSecretType, fmt.Sprintf("its type is %q", s.Type)
		return sf, nil
	}
	cfg, err := dockerconfig.ParseSecretData(string(s.Type), s.Data)
	if err != nil {
		sf.cause, sf.detail = CauseSecretMalformed, err.Error()
		return sf, nil
	}
	sf.config = cfg
	return sf, nil
}

func (d *diagnoser) readServiceAccount(ctx context.Context, f *podFacts) error {
	f.saName = f.pod.Spec.ServiceAccountName
	if f.saName == "" {
		f.saName = "default"
	}
	sa, err := d.cs.CoreV1().ServiceAccounts(f.pod.Namespace).Get(ctx, f.saName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting serviceaccount %q: %w", f.saName, err)
	}
	inPod := map[string]bool{}
	for _, r := range f.pod.Spec.ImagePullSecrets {
		inPod[r.Name] = true
	}
	for _, r := range sa.ImagePullSecrets {
		if r.Name == "" || inPod[r.Name] {
			continue
		}
		f.saOnly = append(f.saOnly, r.Name)
		sf, err := d.readSecret(ctx, f.pod.Namespace, r.Name)
		if err != nil {
			return err
		}
		if sf.config != nil {
			f.saRing.Add("secret "+r.Name, sf.config)
		}
	}
	return nil
}

// otherNamespaces lists the namespaces other than ns that hold a Secret called name, or says it cannot.
func (d *diagnoser) otherNamespaces(ctx context.Context, ns, name string) ([]string, bool) {
	if got, ok := d.elsewhere[name]; ok {
		return got, true
	}
	list, err := d.cs.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		if !d.notedRBAC {
			d.notedRBAC = true
			d.note("cannot list secrets across namespaces (%s): doctor cannot say where a missing secret exists", reason(err))
		}
		return nil, false
	}
	var out []string
	for _, s := range list.Items {
		if s.Name == name && s.Namespace != ns {
			out = append(out, s.Namespace)
		}
	}
	sort.Strings(out)
	d.elsewhere[name] = out
	return out, true
}

func reason(err error) string {
	if apierrors.IsForbidden(err) {
		return "forbidden by RBAC"
	}
	return err.Error()
}

func (d *diagnoser) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	for _, have := range d.report.Notes {
		if have == n {
			return
		}
	}
	d.report.Notes = append(d.report.Notes, n)
}

// pullState says whether the kubelet got the image ("ok"), reports failing to ("failing"), or neither yet, and the
// latest pull-failure text for it.
func pullState(f *podFacts, c corev1.Container) (state, event string) {
	state = "pending"
	for _, st := range allStatuses(f.pod) {
		if st.Name != c.Name {
			continue
		}
		switch {
		case st.State.Waiting != nil && pullFailureReasons[st.State.Waiting.Reason]:
			state, event = "failing", st.State.Waiting.Message
		case st.ImageID != "" || st.State.Running != nil || st.State.Terminated != nil:
			state = "ok"
		}
	}
	quoted := `"` + c.Image + `"`
	for i := len(f.events) - 1; i >= 0; i-- {
		e := f.events[i]
		if e.Reason == "Failed" && strings.Contains(e.Message, quoted) && ClassifyEvent(e.Message) != EventNone {
			if state != "ok" {
				state = "failing"
			}
			if event == "" || ClassifyEvent(event) == EventNone || ClassifyEvent(event) == EventOther {
				event = e.Message
			}
			break
		}
	}
	if state == "ok" {
		event = ""
	}
	return state, event
}
