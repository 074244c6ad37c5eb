package manifests

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Volume names in the pod template.
const (
	volumeData       = "data"
	volumeAuth       = "auth"
	volumeHTTPSecret = "http-secret"
	volumeTLS        = "tls"
	volumeTmp        = "tmp"
)

func (g generator) deployment() (*appsv1.Deployment, error) {
	hash, err := g.configHash()
	if err != nil {
		return nil, err
	}
	podAnnotations := g.annotations()
	if podAnnotations == nil {
		podAnnotations = map[string]string{}
	}
	podAnnotations[ConfigHashAnnotation] = hash

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: g.meta(g.o.Name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(g.o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: g.selector()},
			Strategy: g.strategy(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: g.labels(), Annotations: podAnnotations},
				Spec:       g.podSpec(),
			},
		},
	}, nil
}

// strategy: a ReadWriteOnce(Pod) volume cannot be attached to a second pod on another node, so a rolling update
// would hang with the new pod stuck in ContainerCreating; Recreate stops the old pod first. A shared
// (ReadWriteMany) volume allows a rolling update that never drops below the wanted replicas.
// Object storage has no volume to hand over, so it rolls like ReadWriteMany.
func (g generator) strategy() appsv1.DeploymentStrategy {
	if g.o.AccessMode != corev1.ReadWriteMany && !g.o.objectStorage() {
		return appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		},
	}
}

func (g generator) podSpec() corev1.PodSpec {
	claim := g.o.ExistingClaim
	if claim == "" {
		claim = g.o.Name
	}
	data := corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}
	if g.o.objectStorage() {
		// Images live in the bucket; the data directory only keeps the server's local state.
		data = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	}
	volumes := []corev1.Volume{
		{Name: volumeData, VolumeSource: data},
		// The htpasswd Secret is mounted as a whole directory, never with subPath: the kubelet only updates
		// projected files in directory mounts, and the server picks up user changes live from there.
		{Name: volumeAuth, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: HtpasswdSecretName(g.o.Name), DefaultMode: ptr.To[int32](0o440)},
		}},
		{Name: volumeHTTPSecret, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: HTTPSecretName(g.o.Name), DefaultMode: ptr.To[int32](0o440)},
		}},
	}
	if g.o.TLSSecretName != "" {
		volumes = append(volumes, corev1.Volume{Name: volumeTLS, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: g.o.TLSSecretName, DefaultMode: ptr.To[int32](0o440)},
		}})
	}
	volumes = append(volumes, corev1.Volume{Name: volumeTmp, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})

	return corev1.PodSpec{
		// The registry never talks to the Kubernetes API.
		AutomountServiceAccountToken: ptr.To(false),
		// No REGISTRY_* service-link variables: a Service named "registry" would otherwise inject REGISTRY_PORT
		// and friends, which distribution reads as configuration overrides.
		EnableServiceLinks: ptr.To(false),
		// Time for in-flight uploads to finish after SIGTERM.
		TerminationGracePeriodSeconds: ptr.To[int64](60),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true),
			RunAsUser:    ptr.To[int64](nonRootID),
			RunAsGroup:   ptr.To[int64](nonRootID),
			// fsGroup makes the volume writable by the non-root user.
			FSGroup:             ptr.To[int64](nonRootID),
			FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
			SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Affinity:   g.affinity(),
		Containers: []corev1.Container{g.container()},
		Volumes:    volumes,
	}
}

func (g generator) container() corev1.Container {
	scheme := corev1.URISchemeHTTP
	mounts := []corev1.VolumeMount{
		{Name: volumeData, MountPath: DataDir},
		{Name: volumeAuth, MountPath: AuthDir, ReadOnly: true},
		{Name: volumeHTTPSecret, MountPath: HTTPSecretDir, ReadOnly: true},
	}
	if g.o.TLSSecretName != "" {
		scheme = corev1.URISchemeHTTPS
		mounts = append(mounts, corev1.VolumeMount{Name: volumeTLS, MountPath: TLSDir, ReadOnly: true})
	}
	mounts = append(mounts, corev1.VolumeMount{Name: volumeTmp, MountPath: "/tmp"})
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString(RegistryPortName), Scheme: scheme,
			}},
			PeriodSeconds:    period,
			TimeoutSeconds:   3,
			FailureThreshold: 3,
		}
	}
	return corev1.Container{
		Name:            ContainerName,
		Image:           g.o.Image,
		ImagePullPolicy: g.o.ImagePullPolicy,
		Args:            g.serverArgs(),
		Env:             g.env(),
		Ports: []corev1.ContainerPort{
			{Name: RegistryPortName, ContainerPort: RegistryPort, Protocol: corev1.ProtocolTCP},
			{Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
		},
		LivenessProbe:  probe("/healthz", 10),
		ReadinessProbe: probe("/readyz", 5),
		Resources:      g.o.Resources,
		VolumeMounts:   mounts,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}
