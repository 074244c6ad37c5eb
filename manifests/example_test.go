package manifests_test

import (
	"fmt"
	"strings"

	"github.com/registry-kit/registry-kit/manifests"
)

// Generate builds typed objects; the caller renders them (YAML, JSON, a kustomize directory) or applies them.
func ExampleGenerate() {
	set, err := manifests.Generate(manifests.Options{
		Namespace: "docker-registry",
		// An existing htpasswd file (here user "dev"); without users, Generate would create "admin" with a random
		// password read from Options.Rand and report it in set.GeneratedUser.
		Htpasswd:   []byte("dev:$2y$05$izlOHKQiRY3YyxX3dASF/ONGTBFYBEGF44wpVWdA/gQpO8EHepdB2\n"),
		HTTPSecret: []byte("example-http-secret"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range set.Objects() {
		fmt.Println(o.GetObjectKind().GroupVersionKind().Kind)
	}
	fmt.Println(strings.Join(set.Deployment.Spec.Template.Spec.Containers[0].Args, " "))
	// Output:
	// Namespace
	// Secret
	// Secret
	// Secret
	// PersistentVolumeClaim
	// Service
	// Deployment
	// serve --addr=:5000 --data-dir=/var/lib/registry --htpasswd=/etc/registry-kit/auth/htpasswd --metrics-addr=:5001 --http-secret-file=/etc/registry-kit/http-secret/secret --gc-interval=24h
}

// Validate reports every problem at once, each naming the flag that sets the field.
func ExampleOptions_Validate() {
	err := manifests.Options{Replicas: 2, ServiceType: "NodePort", NodePort: 80, ExternalSecrets: true}.Validate()
	fmt.Println(err)
	// Output:
	// --replicas 2: a ReadWriteOnce volume attaches to one node, so only one registry pod can use it; use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage
	// --node-port 80: must be in the node port range 30000-32767
}

// Files renders a kustomize directory: one file per object and a kustomization.yaml listing them in apply order.
func ExampleSet_Files() {
	set, err := manifests.Generate(manifests.Options{ExternalSecrets: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	files, err := set.Files()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range files {
		fmt.Println(f.Name)
	}
	// Output:
	// namespace-docker-registry.yaml
	// persistentvolumeclaim-registry.yaml
	// service-registry.yaml
	// deployment-registry.yaml
	// kustomization.yaml
}
