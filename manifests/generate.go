package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The contract of `registry-kit serve` inside the container: ports, mount points and the files it reads.
const (
	RegistryPort     = 5000
	MetricsPort      = 5001
	RegistryPortName = "registry"
	MetricsPortName  = "metrics"

	DataDir     = "/var/lib/registry"
	AuthDir     = "/etc/registry-kit/auth"
	HtpasswdKey = "htpasswd"
	// AccessPolicyKey is the access policy's key in the htpasswd Secret: mounted next to the htpasswd file, where
	// serve finds it (and reloads it live).
	AccessPolicyKey = "access-policy.yaml"
	// PullerUser is the pull-only user every generated registry has; its password is in PullerSecretName.
	PullerUser       = "puller"
	HTTPSecretDir    = "/etc/registry-kit/http-secret"
	HTTPSecretKey    = "secret"
	TLSDir           = "/etc/registry-kit/tls"
	ContainerName    = "registry"
	nonRootID        = 65532
	annotationPrefix = "registry-kit.dev/"
	// ConfigHashAnnotation on the pod template changes whenever the server's startup configuration changes.
	ConfigHashAnnotation = annotationPrefix + "config-hash"
)

// Standard labels on every object. The selector uses LabelName and LabelInstance only, since it is immutable.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	AppName        = "registry-kit"
)

var standardLabelKeys = map[string]struct{}{LabelName: {}, LabelInstance: {}, LabelManagedBy: {}}

// HtpasswdSecretName and HTTPSecretName are the names of the two Secrets the Deployment mounts.
func HtpasswdSecretName(name string) string { return name + "-htpasswd" }
func HTTPSecretName(name string) string     { return name + "-http-secret" }

// PullerSecretName is the kubernetes.io/basic-auth Secret holding the pull-only user's name and password.
func PullerSecretName(name string) string { return name + "-puller" }

// Generate validates opts and builds the objects that run registry-kit. It performs no I/O; it reads randomness
// only from opts.Rand (and bcrypt's salts from crypto/rand).
func Generate(opts Options) (*Set, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("validating options: %w", err)
	}
	o := opts.withDefaults()
	g := generator{o: o}
	s := &Set{}
	if !o.OmitNamespace {
		s.Namespace = g.namespace()
	}
	if !o.ExternalSecrets {
		c, err := buildCredentials(o)
		if err != nil {
			return nil, err
		}
		s.HtpasswdSecret = g.secret(HtpasswdSecretName(o.Name), HtpasswdKey, c.htpasswd)
		if !o.NoAccessPolicy {
			s.HtpasswdSecret.Data[AccessPolicyKey] = c.policy
			s.PullerSecret = g.secret(PullerSecretName(o.Name), corev1.BasicAuthUsernameKey, []byte(c.puller.Name))
			s.PullerSecret.Type = corev1.SecretTypeBasicAuth
			s.PullerSecret.Data[corev1.BasicAuthPasswordKey] = []byte(c.puller.Password)
			s.Puller = &c.puller
		}
		s.HTTPSecret = g.secret(HTTPSecretName(o.Name), HTTPSecretKey, c.httpSecret)
		s.GeneratedUser = c.generated
		if len(o.S3.AccessKey) > 0 {
			s.S3Secret = g.secret(S3SecretName(o.Name), S3AccessKeyKey, o.S3.AccessKey)
			s.S3Secret.Data[S3SecretKeyKey] = o.S3.SecretKey
		}
		if len(c.redis) > 0 {
			s.RedisSecret = g.secret(RedisSecretName(o.Name), RedisPasswordKey, c.redis)
		}
	}
	if o.ExistingClaim == "" && !o.objectStorage() {
		s.PersistentVolumeClaim = g.pvc()
	}
	if o.Redis.InCluster {
		s.RedisService = g.redisService()
		s.RedisDeployment = g.redisDeployment()
	}
	if o.Replicas > 1 {
		s.PodDisruptionBudget = g.podDisruptionBudget()
	}
	s.Service = g.service()
	d, err := g.deployment()
	if err != nil {
		return nil, err
	}
	s.Deployment = d
	if o.Ingress != nil {
		s.Ingress = g.ingress()
	}
	return s, nil
}

type generator struct{ o Options }

func (g generator) selector() map[string]string {
	return map[string]string{LabelName: AppName, LabelInstance: g.o.Name}
}

func (g generator) labels() map[string]string {
	l := maps.Clone(g.o.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, g.selector())
	l[LabelManagedBy] = AppName
	return l
}

func (g generator) annotations() map[string]string {
	if len(g.o.Annotations) == 0 {
		return nil
	}
	return maps.Clone(g.o.Annotations)
}

func (g generator) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: g.o.Namespace, Labels: g.labels(), Annotations: g.annotations()}
}

// namespace carries the Pod Security labels: the registry pod meets the "restricted" standard, so the namespace
// enforces it and nothing weaker can be scheduled there by mistake.
func (g generator) namespace() *corev1.Namespace {
	m := g.meta(g.o.Namespace)
	m.Namespace = ""
	m.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	m.Labels["pod-security.kubernetes.io/warn"] = "restricted"
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: m}
}

func (g generator) secret(name, key string, value []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: g.meta(name),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{key: value},
	}
}

func (g generator) pvc() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: g.meta(g.o.Name),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{g.o.AccessMode},
			StorageClassName: g.o.StorageClass,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: g.o.StorageSize},
			},
		},
	}
}

func (g generator) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: g.meta(g.o.Name),
		Spec: corev1.ServiceSpec{
			Type:     g.o.ServiceType,
			Selector: g.selector(),
			// Only the registry port: the metrics port stays off the Service so a NodePort or LoadBalancer never
			// exposes it outside the cluster; Prometheus scrapes the pods' "metrics" port.
			Ports: []corev1.ServicePort{{
				Name:       RegistryPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       RegistryPort,
				TargetPort: intstr.FromString(RegistryPortName),
				NodePort:   g.o.NodePort,
			}},
		},
	}
}

func (g generator) ingress() *networkingv1.Ingress {
	in := g.o.Ingress
	m := g.meta(g.o.Name)
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	// Image layers are large and pushed in one request: no body-size limit, long timeouts and no buffering of
	// the upload on the controller's disk.
	m.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = "0"
	m.Annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "600"
	m.Annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] = "600"
	m.Annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] = "off"
	if g.o.TLSSecretName != "" {
		m.Annotations["nginx.ingress.kubernetes.io/backend-protocol"] = "HTTPS"
	}
	spec := networkingv1.IngressSpec{
		IngressClassName: in.ClassName,
		Rules: []networkingv1.IngressRule{{
			Host: in.Host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path:     "/",
					PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: g.o.Name,
						Port: networkingv1.ServiceBackendPort{Name: RegistryPortName},
					}},
				}},
			}},
		}},
	}
	if in.TLSSecretName != "" {
		spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{in.Host}, SecretName: in.TLSSecretName}}
	}
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: m,
		Spec:       spec,
	}
}

// serverArgs are the flags of `registry-kit serve`: the whole of the server's configuration.
func (g generator) serverArgs() []string {
	args := []string{
		"serve",
		fmt.Sprintf("--addr=:%d", RegistryPort),
		"--data-dir=" + DataDir,
		"--htpasswd=" + AuthDir + "/" + HtpasswdKey,
		fmt.Sprintf("--metrics-addr=:%d", MetricsPort),
		"--http-secret-file=" + HTTPSecretDir + "/" + HTTPSecretKey,
	}
	args = append(args, g.objectStorageArgs()...)
	// Collect garbage once a day, at most a day (plus the 2h window) after it appears, one run per Redis lock
	// across replicas. Object storage without Redis cannot coordinate replicas, so serve refuses it there.
	if !g.o.objectStorage() || len(g.o.redisAddrs()) > 0 {
		args = append(args, "--gc-interval=24h")
	}
	if g.o.TLSSecretName != "" {
		args = append(args, "--tls-cert="+TLSDir+"/"+corev1.TLSCertKey, "--tls-key="+TLSDir+"/"+corev1.TLSPrivateKeyKey)
	}
	return args
}

// configHash is the sha256 of what the server reads once at startup and that the pod template does not already
// spell out by content. It deliberately leaves out:
//   - the htpasswd Secret: the Secret is mounted as a directory, the kubelet swaps the file in place, and the
//     server reloads it live, so adding a user must not restart the registry;
//   - the HTTP secret and TLS Secret contents: they are not inputs of a pure generator run (a random HTTP secret
//     would restart pods on every `generate | kubectl apply`, and the kustomize base has no secret at all).
//     Rotating either is `kubectl rollout restart deployment/<name>`.
//
// Today that leaves the server's flags; the hash exists so that configuration moved out of the pod template
// (e.g. an object-storage config file in a ConfigMap) rolls the pods by the same mechanism.
func (g generator) configHash() (string, error) {
	cfg := struct {
		Args []string `json:"args"`
	}{Args: g.serverArgs()}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("hashing server configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
