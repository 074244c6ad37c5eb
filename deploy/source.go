package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/registry-kit/registry-kit/manifests"
)

// Source says where the objects to deploy come from: exactly one of its fields is set.
type Source struct {
	// Generate builds the objects with the manifests generator. Unless RotatePassword, the htpasswd already in the
	// cluster is fed back to it, and always the HTTP secret and the in-cluster Redis password, so a redeploy keeps
	// every password.
	Generate *manifests.Options
	// KustomizeDir is a kustomization directory (base or overlay) built with kustomize's krusty; registry-kit
	// Secrets it does not provide and the cluster does not have are generated.
	KustomizeDir string
	// Objects are applied as given.
	Objects []*unstructured.Unstructured
	// RotatePassword makes Generate create a new admin password even when the htpasswd Secret exists (users
	// given in Generate.Users are kept; other entries of the old file are dropped). The HTTP secret is kept.
	RotatePassword bool
	// RotatePullerPassword makes Generate create a new password for the pull-only user (in its Secret and the
	// htpasswd; the admin password and the access policy are kept). Pull secrets deploy writes follow it.
	RotatePullerPassword bool
}

func (s Source) validate() error {
	n := 0
	for _, set := range []bool{s.Generate != nil, s.KustomizeDir != "", len(s.Objects) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errNoObjects
	case n > 1:
		return errors.New("give one source of objects: generator options, a kustomize directory or objects")
	case s.RotatePassword && s.Generate == nil:
		return errors.New("--rotate-password works with the generator, not with -k (edit the overlay's htpasswd instead)")
	case s.RotatePullerPassword && s.Generate == nil:
		return errors.New("--rotate-puller-password works with the generator, not with -k (edit the overlay's htpasswd instead)")
	}
	return nil
}

// objects resolves the source into the objects to apply and the admin user generated on the way, if any.
func (s Source) objects(ctx context.Context, c Clients) ([]*unstructured.Unstructured, *manifests.User, error) {
	if err := s.validate(); err != nil {
		return nil, nil, err
	}
	switch {
	case s.Generate != nil:
		return generate(ctx, c, *s.Generate, s.RotatePassword, s.RotatePullerPassword)
	case s.KustomizeDir != "":
		objs, err := BuildKustomization(s.KustomizeDir)
		if err != nil {
			return nil, nil, err
		}
		return AddMissingSecrets(ctx, c, objs)
	}
	return s.Objects, nil, nil
}

func generate(ctx context.Context, c Clients, o manifests.Options, rotate, rotatePuller bool) ([]*unstructured.Unstructured, *manifests.User, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	ns, name := o.Namespace, o.Name
	if ns == "" {
		ns = manifests.DefaultNamespace
	}
	if name == "" {
		name = manifests.DefaultName
	}
	if !o.ExternalSecrets {
		creds, err := ExistingCredentials(ctx, c, ns, name)
		if err != nil {
			return nil, nil, err
		}
		if len(o.HTTPSecret) == 0 {
			o.HTTPSecret = creds.HTTPSecret
		}
		// The in-cluster Redis keeps its password too: a new one would restart Redis and every replica for nothing.
		// (For an external Redis the password is the user's: --redis-password-file, or the Secret as it is.)
		if o.Redis.InCluster && len(o.Redis.Password) == 0 {
			o.Redis.Password = creds.RedisPassword
		}
		// So is the pull-only user's password: pull secrets spread to namespaces and nodes keep working.
		// (--rotate-puller-password: the generator draws a new one and replaces its line in the kept htpasswd.)
		if o.PullerPassword == "" && !rotatePuller {
			o.PullerPassword = string(creds.PullerPassword)
		}
		var generated *manifests.User
		switch {
		case rotate:
			pw := make([]byte, 18)
			if _, err := rand.Read(pw); err != nil {
				return nil, nil, fmt.Errorf("generating a new admin password: %w", err)
			}
			generated = &manifests.User{Name: manifests.DefaultAdminUser, Password: hex.EncodeToString(pw)}
			o.Users = append(o.Users, *generated)
		case len(o.Htpasswd) == 0:
			o.Htpasswd = creds.Htpasswd
			// The access policy in the cluster may have been edited: keep it with the users it was written for.
			if len(o.AccessPolicy) == 0 && len(o.Users) == 0 {
				o.AccessPolicy = creds.AccessPolicy
			}
		}
		set, err := manifests.Generate(o)
		if err != nil {
			return nil, nil, fmt.Errorf("generating manifests: %w", err)
		}
		if set.GeneratedUser != nil {
			generated = set.GeneratedUser
		}
		objs, err := AllToUnstructured(set.Objects())
		return objs, generated, err
	}
	set, err := manifests.Generate(o)
	if err != nil {
		return nil, nil, fmt.Errorf("generating manifests: %w", err)
	}
	objs, err := AllToUnstructured(set.Objects())
	return objs, nil, err
}

// BuildKustomization builds a kustomization directory on disk, as `kubectl kustomize DIR` does.
func BuildKustomization(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("building kustomization %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		// Through JSON: kyaml's maps hold Go ints, which unstructured objects cannot (deep) copy.
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("reading %s from kustomization %s: %w", r.CurId(), dir, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("decoding %s from kustomization %s: %w", r.CurId(), dir, err)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("building kustomization %s: %w", dir, errNoObjects)
	}
	return out, nil
}

// defaultNamespaces puts namespaced objects that name no namespace into ns, as kubectl apply does.
func defaultNamespaces(c Clients, objs []*unstructured.Unstructured, ns string) error {
	for _, u := range objs {
		if u.GetNamespace() != "" {
			continue
		}
		gvk := u.GroupVersionKind()
		mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return explain(err, "discover", gvk.String())
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if ns == "" {
				return fmt.Errorf("%s has no namespace and none was given", ref(u))
			}
			u.SetNamespace(ns)
		}
	}
	return nil
}
