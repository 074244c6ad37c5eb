// Package deploy puts registry-kit onto a cluster and takes it off again: it server-side applies a set of objects
// (from the manifests generator or a kustomize overlay) under the "registry-kit" field manager, keeps generated
// secrets stable across runs, waits with kstatus and an HTTP probe until the registry serves, explains what is not
// ready when it does not, and undeploys what it applied. Subpackages pullsecret and doctor own the other cluster tasks.
package deploy
