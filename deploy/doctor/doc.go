// Package doctor diagnoses why a pod cannot pull its images (ErrImagePull / ImagePullBackOff). It reads the pod, its
// events, its ServiceAccount and the pull Secrets it references through a kubernetes.Interface, probes the registry
// live with go-containerregistry (Basic and Bearer-token auth), and reports an ordered list of checks per container
// image, each with a status, a message and the command that fixes it. Secret contents never appear in a report.
package doctor
