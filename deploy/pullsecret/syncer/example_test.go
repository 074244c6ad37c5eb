package syncer_test

import (
	"fmt"
	"strings"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// Manifests gives what `deploy --sync-pull-secrets` applies; ConfigFromArgs reads the controller's command line back.
func ExampleManifests() {
	m := syncer.ManifestOptions{Namespace: "docker-registry", Image: "registry-kit:dev", SourceName: "registry-kit-pull",
		TargetName: "regcred", NamespaceSelector: "pull-secrets=registry-kit"}
	objs, err := syncer.Manifests(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range objs {
		fmt.Println(o.GetObjectKind().GroupVersionKind().Kind)
	}
	fmt.Println(strings.Join(m.Args(), " "))
	cfg, _ := syncer.ConfigFromArgs(m.Args()[2:])
	fmt.Println(cfg.Source, cfg.TargetNameOf(), cfg.Namespaces.Labels)
	// Output:
	// ServiceAccount
	// ClusterRole
	// ClusterRoleBinding
	// Role
	// RoleBinding
	// Deployment
	// pull-secret sync --source docker-registry/registry-kit-pull --target-name regcred --exclude-namespace kube-* --service-accounts default --listen :8080 --namespace-selector pull-secrets=registry-kit
	// docker-registry/registry-kit-pull regcred pull-secrets=registry-kit
}
