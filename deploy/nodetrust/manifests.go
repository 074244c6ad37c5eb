package nodetrust

import (
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Node paths containerd uses by default.
const (
	DefaultContainerdConfig = "/etc/containerd/config.toml"
	DefaultCertsDir         = "/etc/containerd/certs.d"
)

// AppName is the app.kubernetes.io/name label of the trust agent's pods.
const AppName = "registry-kit-node-trust"

// Paths inside the agent's pod.
const (
	podCertsDir     = "/host/certs"
	podConfigDir    = "/host/containerd"
	podCADir        = "/etc/registry-kit/ca"
	CAConfigMapKey  = "ca.crt"
	agentContainer  = "trust"
	holdingContaner = "hold"
)

// DaemonSetOptions describe the trust DaemonSet of one registry.
type DaemonSetOptions struct {
	Namespace, Name string
	Labels          map[string]string
	Image           string
	PullPolicy      corev1.PullPolicy
	// Host is the registry as the nodes pull from it.
	Host Host
	// CAConfigMap names a ConfigMap (in Namespace) holding the CA under CAConfigMapKey; empty for none.
	CAConfigMap string
	// Owner is the registry's namespace/name.
	Owner string
	// ContainerdConfig and CertsDir are node paths; defaults DefaultContainerdConfig and DefaultCertsDir.
	ContainerdConfig, CertsDir string
	// Remove makes the agent remove what it wrote instead (undeploy rolls the DaemonSet to it, then deletes it).
	Remove bool
}

// AgentArgs are the arguments of `registry-kit nodes trust-agent` in the DaemonSet's init container.
func (o DaemonSetOptions) AgentArgs() []string {
	o = o.withDefaults()
	certsRoot, certsRest := splitTemplate(o.CertsDir, false)
	confRoot, confRest := splitTemplate(o.ContainerdConfig, true)
	// Kubernetes expands $(NODE_NAME) in args from the container's NODE_NAME (the downward API's spec.nodeName).
	args := []string{"nodes", "trust-agent", "--registry=" + o.Host.Address, "--owner=" + o.Owner,
		"--certs-dir=" + filepath.Join(podCertsDir, certsRest), "--host-certs-dir=" + o.CertsDir,
		"--certs-mount=" + podCertsDir + "=" + certsRoot,
		"--containerd-config=" + filepath.Join(podConfigDir, confRest), "--host-containerd-config=" + o.ContainerdConfig,
		"--config-mount=" + podConfigDir + "=" + confRoot}
	if o.Host.TLS {
		args = append(args, "--tls")
	}
	if o.CAConfigMap != "" {
		args = append(args, "--ca-file="+filepath.Join(podCADir, CAConfigMapKey))
	}
	if o.Remove {
		args = append(args, "--remove")
	}
	return args
}

func (o DaemonSetOptions) withDefaults() DaemonSetOptions {
	if o.ContainerdConfig == "" {
		o.ContainerdConfig = DefaultContainerdConfig
	}
	if o.CertsDir == "" {
		o.CertsDir = DefaultCertsDir
	}
	return o
}

// DaemonSet runs the agent on every node (it tolerates every taint): an init container writes (or removes) the
// node's certs.d entry and exits, a small container then holds the pod so the DaemonSet stays Ready and nodes
// that join later get the same. The agent's error, if any, is the init container's termination message.
func DaemonSet(o DaemonSetOptions) *appsv1.DaemonSet {
	o = o.withDefaults()
	labels := map[string]string{"app.kubernetes.io/name": AppName, "app.kubernetes.io/managed-by": "registry-kit"}
	for k, v := range o.Labels {
		labels[k] = v
	}
	hostDir := func(p string) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}
	}
	certsRoot, _ := splitTemplate(o.CertsDir, false)
	confRoot, _ := splitTemplate(o.ContainerdConfig, true)
	volumes := []corev1.Volume{
		{Name: "certs-d", VolumeSource: hostDir(certsRoot)},
		{Name: "containerd-config", VolumeSource: hostDir(confRoot)},
	}
	mounts := []corev1.VolumeMount{
		{Name: "certs-d", MountPath: podCertsDir},
		{Name: "containerd-config", MountPath: podConfigDir, ReadOnly: true},
	}
	if o.CAConfigMap != "" {
		volumes = append(volumes, corev1.Volume{Name: "ca", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.CAConfigMap}},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: "ca", MountPath: podCADir, ReadOnly: true})
	}
	small := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("8Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
	}
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					InitContainers: []corev1.Container{{
						Name:            agentContainer,
						Image:           o.Image,
						ImagePullPolicy: o.PullPolicy,
						Args:            o.AgentArgs(),
						Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
						VolumeMounts: mounts,
						Resources:    small,
						// Root: the node's certs.d belongs to root.
						SecurityContext: &corev1.SecurityContext{
							RunAsUser:                ptr.To[int64](0),
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"DAC_OVERRIDE", "CHOWN", "FOWNER"}},
						},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
					Containers: []corev1.Container{{
						Name:            holdingContaner,
						Image:           o.Image,
						ImagePullPolicy: o.PullPolicy,
						Args:            []string{"nodes", "trust-agent", "--hold"},
						Resources:       small,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							RunAsUser:                ptr.To[int64](65532),
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: volumes,
				},
			},
		},
	}
}
