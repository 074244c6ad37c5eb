package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// DryRun says whether objects are really applied.
type DryRun string

// The dry-run modes, named as kubectl names them.
const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// ParseDryRun accepts the values of kubectl's --dry-run flag ("" means none).
func ParseDryRun(s string) (DryRun, error) {
	switch DryRun(s) {
	case "", DryRunNone:
		return DryRunNone, nil
	case DryRunClient, DryRunServer:
		return DryRun(s), nil
	}
	return "", fmt.Errorf("invalid --dry-run %q: want none, client or server", s)
}

// Action is what applying one object did, as kubectl reports it.
type Action string

// The actions apply reports.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
)

// Applied is one object after apply: as the server returned it (or as sent, for a client dry run).
type Applied struct {
	Object *unstructured.Unstructured
	Action Action
}

// Ref names the object the way kubectl prints it, e.g. "deployment.apps/registry".
func (a Applied) Ref() string { return ref(a.Object) }

func ref(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	kind := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		kind += "." + gvk.Group
	}
	return kind + "/" + u.GetName()
}

func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s in namespace %q", ref(u), ns)
	}
	return ref(u)
}

// applyOrder puts objects others depend on first: namespaces before what lives in them, secrets and claims before
// the Deployment that mounts them. Unknown kinds go last, in their given order.
var applyOrder = map[string]int{
	"Namespace": 0, "ServiceAccount": 1, "Role": 2, "RoleBinding": 3, "ClusterRole": 2, "ClusterRoleBinding": 3, "Secret": 4, "ConfigMap": 5,
	"PersistentVolume": 6, "PersistentVolumeClaim": 7, "Service": 8, "Deployment": 9, "StatefulSet": 9,
	"PodDisruptionBudget": 10,
}

func sortForApply(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	rank := func(u *unstructured.Unstructured) int {
		if r, ok := applyOrder[u.GetKind()]; ok {
			return r
		}
		return len(applyOrder) + 1
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// resourceFor finds the REST endpoint of an object, checking that a namespaced object names its namespace.
func resourceFor(c Clients, u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the cluster does not serve %s (missing CRD or API group?): %w", gvk, err)
		}
		return nil, explain(err, "discover", gvk.String())
	}
	if mapping.Scope.Name() == meta.RESTScopeNameRoot {
		return c.Dynamic.Resource(mapping.Resource), nil
	}
	if u.GetNamespace() == "" {
		return nil, fmt.Errorf("%s has no namespace", ref(u))
	}
	return c.Dynamic.Resource(mapping.Resource).Namespace(u.GetNamespace()), nil
}

type applyOptions struct {
	force  bool
	dryRun DryRun
}

// applyAll server-side applies objs in dependency order and reports what each apply did.
func applyAll(ctx context.Context, c Clients, objs []*unstructured.Unstructured, opts applyOptions) ([]Applied, error) {
	var out []Applied
	creatingNS := map[string]bool{}
	for _, u := range sortForApply(objs) {
		a, err := applyOne(ctx, c, u, opts, creatingNS)
		if err != nil {
			return out, err
		}
		if u.GetKind() == "Namespace" && a.Action == Created {
			creatingNS[u.GetName()] = true
		}
		out = append(out, a)
	}
	return out, nil
}

func applyOne(ctx context.Context, c Clients, u *unstructured.Unstructured, opts applyOptions, creatingNS map[string]bool) (Applied, error) {
	ri, err := resourceFor(c, u)
	if err != nil {
		return Applied{}, err
	}
	existing, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return Applied{}, explain(err, "get", describe(u))
	}
	if opts.dryRun == DryRunClient {
		return Applied{Object: u, Action: actionFor(existing, u)}, nil
	}
	if opts.dryRun == DryRunServer && existing == nil && creatingNS[u.GetNamespace()] {
		// The namespace would be created by this apply, so the server cannot check objects inside it yet.
		return Applied{Object: u, Action: Created}, nil
	}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return Applied{}, fmt.Errorf("encoding %s: %w", describe(u), err)
	}
	po := metav1.PatchOptions{FieldManager: FieldManager}
	if opts.force {
		force := true
		po.Force = &force
	}
	patch := func(po metav1.PatchOptions) (*unstructured.Unstructured, error) {
		got, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, po)
		switch {
		case err == nil:
			return got, nil
		case apierrors.IsConflict(err):
			return nil, fmt.Errorf("applying %s: fields are owned by another manager (someone edited it by hand?); re-run with --force-conflicts to take them over: %w", describe(u), err)
		case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "port is already allocated"):
			return nil, fmt.Errorf("applying %s: the node port is used by another Service; choose a free one with --node-port, or --node-port 0 to let the cluster choose: %w", describe(u), err)
		}
		return nil, explain(err, "patch", describe(u))
	}
	dry := po
	dry.DryRun = []string{metav1.DryRunAll}
	if opts.dryRun == DryRunServer || existing == nil {
		if opts.dryRun == DryRunServer {
			po = dry
		}
		got, err := patch(po)
		if err != nil {
			return Applied{}, err
		}
		return Applied{Object: got, Action: actionFor(existing, got)}, nil
	}
	// The object exists: a server-side dry run first tells whether the apply would change anything, so an
	// unchanged object is not written at all (the API server bumps resourceVersion on some no-op writes).
	would, err := patch(dry)
	if err != nil {
		return Applied{}, err
	}
	if sameObject(existing, would) {
		return Applied{Object: existing, Action: Unchanged}, nil
	}
	got, err := patch(po)
	if err != nil {
		return Applied{}, err
	}
	return Applied{Object: got, Action: Configured}, nil
}

// sameObject reports whether two versions of an object hold the same content and the same field owners.
// Owners of subresources (status, written by controllers) are left out like status itself: an apply never changes
// them, and a controller updating status between the read and the dry run (pods becoming ready) is no change.
func sameObject(a, b *unstructured.Unstructured) bool {
	return equality.Semantic.DeepEqual(withOwners(a), withOwners(b))
}

func withOwners(u *unstructured.Unstructured) map[string]any {
	c := comparable(u)
	var owners []string
	for _, mf := range u.GetManagedFields() {
		if mf.Subresource != "" {
			continue
		}
		fields := ""
		if mf.FieldsV1 != nil {
			fields = string(mf.FieldsV1.Raw)
		}
		owners = append(owners, mf.Manager+"|"+string(mf.Operation)+"|"+mf.Subresource+"|"+mf.APIVersion+"|"+fields)
	}
	c["owners"] = owners
	return c
}

// actionFor guesses what an apply would do without doing it: the object is created, left as it is, or changed.
// It compares the fields the caller sets with the live object, ignoring server-owned metadata and status.
func actionFor(existing, want *unstructured.Unstructured) Action {
	if existing == nil {
		return Created
	}
	if sameObject(existing, want) || subsetOf(comparable(want), comparable(existing)) {
		return Unchanged
	}
	return Configured
}

func comparable(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy().Object
	delete(c, "status")
	if md, ok := c["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
			delete(md, k)
		}
	}
	return c
}

// subsetOf reports whether every field set in want has the same value in have (server defaults may add more).
func subsetOf(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok {
				if isEmpty(wv) {
					continue
				}
				return false
			}
			if !subsetOf(wv, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subsetOf(w[i], h[i]) {
				return false
			}
		}
		return true
	}
	return equality.Semantic.DeepEqual(normalizeNumber(want), normalizeNumber(have))
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	}
	return false
}

func normalizeNumber(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

// errNoObjects is returned when there is nothing to apply.
var errNoObjects = errors.New("no objects to apply")
