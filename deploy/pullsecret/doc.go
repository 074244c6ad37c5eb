// Package pullsecret puts a kubernetes.io/dockerconfigjson Secret into the namespaces where pods need it and
// adds it to ServiceAccounts' imagePullSecrets. It checks every target first (namespaces exist, no Secret of
// another type in the way, ServiceAccounts present) and only then writes, so a refusal leaves the cluster
// untouched. Pods only read imagePullSecrets when they are created: existing pods must be recreated.
package pullsecret
