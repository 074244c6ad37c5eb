// Package credprovider is registry-kit's kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1):
// Serve answers one CredentialProviderRequest from a node-local docker-config-style credentials file, and
// GenerateConfig writes the kubelet's CredentialProviderConfig (kubelet.config.k8s.io/v1) with registry-kit's
// entry and, optionally, the cloud providers' plugins (ECR, ACR, GCR/Artifact Registry).
//
// On a node:
//   - the registry-kit binary goes in the kubelet's --image-credential-provider-bin-dir
//     (for example /usr/local/lib/kubelet/credential-providers/registry-kit); the provider name in the
//     config must equal the file name, and cloud plugins (ecr-credential-provider, ...) go in the same directory;
//   - the generated config goes where --image-credential-provider-config points
//     (for example /etc/kubernetes/credential-provider-config.yaml);
//   - the credentials go in DefaultCredentialsFile, mode 0600 owned by root ({"auths":{"HOST:PORT":{"auth":...}}},
//     the format of a .dockerconfigjson; `registry-kit pull-secret create -o json` prints one to copy from);
//   - restart the kubelet with both flags. Pods then pull from the matching registries without imagePullSecrets.
package credprovider
