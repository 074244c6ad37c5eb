package deploy_test

import (
	"os"

	"github.com/registry-kit/registry-kit/deploy"
)

// What deploy prints once the registry serves: where to push from this machine, the prefix pods use, and
// copy-paste examples.
func ExampleInstructions() {
	res := &deploy.Result{
		Namespace: "docker-registry", Service: "registry", ServiceType: "NodePort", NodePort: 30500,
		PushAddress: "127.0.0.1:30500", PullPrefix: "localhost:30500",
	}
	deploy.Instructions{Result: res, User: "admin"}.Write(os.Stdout)
	// Output:
	// registry-kit is serving in namespace docker-registry (service registry, type NodePort, node port 30500) after 0s.
	//
	// Push from this machine to:  127.0.0.1:30500
	// Image prefix for pods:      localhost:30500/
	// (the same registry under two names: an image pushed as 127.0.0.1:30500/app:1 is pulled by pods as localhost:30500/app:1)
	//
	// Push an image:
	//   docker login 127.0.0.1:30500 -u admin
	//   docker tag myapp:1.0 127.0.0.1:30500/myapp:1.0
	//   docker push 127.0.0.1:30500/myapp:1.0
	//
	// Let pods in namespace my-app pull with a pull secret:
	//   registry-kit pull-secret create registry-kit-pull -n my-app --server localhost:30500 --username admin --password-stdin
	//
	// Then a pod spec:
	//   apiVersion: v1
	//   kind: Pod
	//   metadata:
	//     name: myapp
	//     namespace: my-app
	//   spec:
	//     imagePullSecrets:
	//     - name: registry-kit-pull
	//     containers:
	//     - name: myapp
	//       image: localhost:30500/myapp:1.0
}
