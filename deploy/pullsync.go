package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret"
	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
	"github.com/registry-kit/registry-kit/manifests"
)

// DefaultPullSyncSource is the Secret in the registry's namespace the pull-secret controller copies.
const DefaultPullSyncSource = "registry-kit-pull"

// PullSync asks Deploy to run the pull-secret controller (`registry-kit pull-secret sync`) beside the registry.
type PullSync struct {
	// SourceName is the dockerconfigjson Secret, in the registry's namespace, that the controller copies. Deploy
	// writes it with the admin credential when it generates that credential (first deploy, --rotate-password) and
	// keeps it otherwise. Default DefaultPullSyncSource.
	SourceName string
	// Controller says what the controller copies where; Namespace, Image and SourceName are filled in by Deploy.
	Controller syncer.ManifestOptions
}

// errPullSyncNoCredential: the password is only in the cluster as a bcrypt hash.
var errPullSyncNoCredential = errors.New("the registry's admin password is only stored as a bcrypt hash, so deploy cannot write the pull secret the controller copies")

// pullSyncObjects returns the controller's objects, and its source Secret when deploy generated the admin
// credential, for the registry among objs.
// The source Secret holds the pull-only user's credential when the objects have one (the generator's puller, kept
// across deploys), so the copies can only pull; without one it falls back to the admin credential deploy generated,
// and warning says so.
func pullSyncObjects(ctx context.Context, c Clients, objs []*unstructured.Unstructured, generated *manifests.User, opts Options) (_ []*unstructured.Unstructured, warning string, _ error) {
	ps := *opts.PullSync
	if ps.SourceName == "" {
		ps.SourceName = DefaultPullSyncSource
	}
	reg := registryDeployment(objs)
	if reg == nil {
		return nil, "", errors.New("--sync-pull-secrets: no registry-kit Deployment among the objects to deploy")
	}
	ns := reg.GetNamespace()
	pullAddr := opts.PullAddress
	if pullAddr == "" {
		port := nodePortOf(objs)
		if port == 0 {
			return nil, "", errors.New("--sync-pull-secrets: the registry has no node port, so the address pods pull from is unknown: give --pull-address")
		}
		pullAddr = net.JoinHostPort(NodeLocalHost, strconv.FormatInt(port, 10))
	}
	var out []*unstructured.Unstructured
	cred := generated
	if p := findPuller(objs); p != nil {
		cred = &p.User
	} else if generated != nil {
		warning = fmt.Sprintf("the pull-secret controller copies the Secret %q, which deploy fills with the admin credential: it can push, "+
			"and every namespace the controller reaches gets it. Give a pull-only user's Secret with --pull-secret-source to avoid that", ps.SourceName)
	}
	if cred != nil {
		s, err := pullSyncSource(ns, ps.SourceName, pullAddr, cred)
		if err != nil {
			return nil, "", err
		}
		out = append(out, s)
	} else {
		_, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, ps.SourceName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, "", fmt.Errorf("--sync-pull-secrets: secret %s/%s does not exist and %w: add --rotate-password (a new admin password, stored there too), or create it: registry-kit pull-secret create %s -n %s --server %s --username USER --password-stdin --service-account ''",
				ns, ps.SourceName, errPullSyncNoCredential, ps.SourceName, ns, pullAddr)
		case err != nil:
			return nil, "", explain(err, "get", fmt.Sprintf("secrets %q in namespace %q", ps.SourceName, ns))
		}
	}
	m := ps.Controller
	m.Namespace, m.SourceName = ns, ps.SourceName
	m.Image, m.ImagePullPolicy = containerImage(reg)
	typed, err := syncer.Manifests(m)
	if err != nil {
		return nil, "", err
	}
	us, err := AllToUnstructured(typed)
	if err != nil {
		return nil, "", err
	}
	return append(out, us...), warning, nil
}

func pullSyncSource(ns, name, server string, u *manifests.User) (*unstructured.Unstructured, error) {
	payload, err := dockerconfig.Build(dockerconfig.Entry{Server: server, Username: u.Name, Password: u.Password})
	if err != nil {
		return nil, fmt.Errorf("building the pull secret for %s: %w", server, err)
	}
	s := pullsecret.Secret(name, ns, payload)
	s.Labels[syncer.ComponentKey] = "pull-secret-sync-source"
	return ToUnstructured(s)
}

// registryDeployment is the registry's own Deployment (not Redis, not the controller).
func registryDeployment(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == "Deployment" && isOurs(u) && !isRedis(u) && u.GetLabels()[manifests.LabelInstance] != "" {
			return u
		}
	}
	return nil
}

func nodePortOf(objs []*unstructured.Unstructured) int64 {
	var r Result
	applied := make([]Applied, 0, len(objs))
	for _, u := range objs {
		applied = append(applied, Applied{Object: u})
	}
	r.describeService(applied)
	return r.NodePort
}

func containerImage(d *unstructured.Unstructured) (string, corev1.PullPolicy) {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, ct := range containers {
		cm, _ := ct.(map[string]any)
		img, _, _ := unstructured.NestedString(cm, "image")
		policy, _, _ := unstructured.NestedString(cm, "imagePullPolicy")
		return img, corev1.PullPolicy(policy)
	}
	return "", ""
}
