// Package dockerconfig owns docker credential files: it parses a docker config.json or a Kubernetes
// pull Secret (.dockerconfigjson / legacy .dockercfg), builds the .dockerconfigjson payload exactly as
// `kubectl create secret docker-registry` does, resolves credsStore/credHelpers through the
// docker-credential-<helper> programs, and finds the entry the kubelet would use for an image, with the
// same rules as the kubelet's credentialprovider.DockerKeyring (URL-ish keys, glob hosts, exact ports,
// path prefixes, the Docker Hub default key).
package dockerconfig
