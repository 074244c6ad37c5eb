package deploy

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// undeployServiceAccountAuth removes the cluster-scoped RBAC `deploy --service-account-auth` applied for the
// registries undeploy deleted (ServiceAccountRBACName of each Deployment). A subject that may not read RBAC objects
// cannot have created them: a refusal is not an error.
func undeployServiceAccountAuth(ctx context.Context, c Clients, opts UndeployOptions, res *UndeployResult) error {
	var names []string
	for _, d := range res.Deleted {
		if name, ok := strings.CutPrefix(d, "deployment.apps/"); ok {
			base := ServiceAccountRBACName(opts.Namespace, name)
			names = append(names, base, base+":issuer-discovery")
		}
	}
	for _, name := range names {
		for _, gvr := range []schema.GroupVersionResource{clusterRoleBindings, clusterRoles} {
			u, err := c.Dynamic.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				continue
			}
			if err != nil {
				return explain(err, "get", gvr.GroupResource().String()+" "+name)
			}
			if !appliedByUs(u) {
				continue
			}
			if err := deleteOne(ctx, c, gvr, u, opts, res); err != nil {
				return fmt.Errorf("removing the RBAC of --service-account-auth: %w", err)
			}
		}
	}
	return nil
}
