package nodeproxy

import (
	"fmt"
	"net"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// DefaultPort is the port the proxy listens on at each node's 127.0.0.1: below the node-port range (so
// kube-proxy never intercepts it) and below the ephemeral range (so no outgoing connection holds it).
const DefaultPort = 29500

// AppName is the app.kubernetes.io/name label of the proxy's pods.
const AppName = "registry-kit-node-proxy"

// DaemonSetOptions describe the proxy DaemonSet of one registry.
type DaemonSetOptions struct {
	// Namespace and Name of the DaemonSet; Labels are added to it and its pods (the selector uses them all).
	Namespace, Name string
	Labels          map[string]string
	// Image is registry-kit's image (the registry's own); PullPolicy its pull policy.
	Image      string
	PullPolicy corev1.PullPolicy
	// Port on 127.0.0.1; default DefaultPort.
	Port int
	// Upstream is the registry Service's ClusterIP:port.
	Upstream string
}

// DaemonSet is the hostNetwork DaemonSet running `registry-kit node-proxy` on every node (it tolerates every
// taint), bound to 127.0.0.1 only.
func DaemonSet(o DaemonSetOptions) (*appsv1.DaemonSet, error) {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, fmt.Errorf("--node-proxy-port %d: want 1-65535", o.Port)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	if err := (Options{Listen: listen, Upstream: o.Upstream}).Validate(); err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/name": AppName, "app.kubernetes.io/managed-by": "registry-kit"}
	for k, v := range o.Labels {
		labels[k] = v
	}
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// The node's network: 127.0.0.1 here is the node's loopback, where its container runtime pulls.
					HostNetwork:                  true,
					DNSPolicy:                    corev1.DNSClusterFirstWithHostNet,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					Containers: []corev1.Container{{
						Name:            "node-proxy",
						Image:           o.Image,
						ImagePullPolicy: o.PullPolicy,
						Args:            []string{"node-proxy", "--listen=" + listen, "--upstream=" + o.Upstream},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
								Host: "127.0.0.1", Port: intstr.FromInt(o.Port),
							}},
							PeriodSeconds: 5,
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}, nil
}
