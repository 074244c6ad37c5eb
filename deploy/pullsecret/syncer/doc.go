// Package syncer is the pull-secret controller: it keeps a copy of one source kubernetes.io/dockerconfigjson
// Secret in every selected namespace and adds it to the chosen ServiceAccounts' imagePullSecrets, reacting to
// Namespace, ServiceAccount and Secret events through client-go informers and a rate-limited workqueue, with
// Lease-based leader election so several replicas are safe. It marks what it writes (a label on its copies, an
// annotation on the ServiceAccounts it patched) and never removes a pull secret it did not add.
package syncer
