// Package manifests generates the Kubernetes objects that run registry-kit in its own namespace: typed Options in,
// k8s.io/api objects out (Namespace, Secrets, PersistentVolumeClaim or S3 object storage, Service, Deployment,
// PodDisruptionBudget for several replicas, optional in-cluster Redis and Ingress), with
// YAML, JSON and kustomize-directory renderings. It is pure: no I/O, no clock, and randomness only from the
// io.Reader the caller injects, so the same inputs give the same bytes. The checked-in kustomize base under
// manifests/base is this package's output for default options, and manifests/chart the Helm chart made from the
// same objects (Chart), both kept in step by golden tests.
package manifests
