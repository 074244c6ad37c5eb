package manifests

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/registry-kit/registry-kit/registry/storageconfig"
)

// StorageS3 keeps blobs in an S3-compatible bucket: no volume, and any number of replicas behind the Service,
// sharing the HTTP secret and (with Redis) the blob-descriptor cache.
const StorageS3 StorageKind = "s3"

// Object storage and Redis defaults and the Secret keys the pods read.
const (
	DefaultS3Region   = storageconfig.DefaultS3Region
	DefaultRedisImage = "redis:7.2"
	RedisPort         = 6379
	S3AccessKeyKey    = "access-key"
	S3SecretKeyKey    = "secret-key"
	RedisPasswordKey  = "password"
	redisPasswordEnv  = "REDIS_PASSWORD"
	redisUID          = 999 // the redis user of the official image
	redisMaxMemory    = "256mb"
)

// S3SecretName and RedisSecretName are the Secrets holding the S3 keys and the Redis password; RedisName names the
// in-cluster Redis Deployment and Service.
func S3SecretName(name string) string    { return name + "-s3" }
func RedisSecretName(name string) string { return name + "-redis" }
func RedisName(name string) string       { return name + "-redis" }

// S3 is S3-compatible object storage, used with Storage StorageS3.
type S3 struct {
	Endpoint       string // --s3-endpoint: http(s)://HOST[:PORT]; empty means AWS S3
	Region         string // --s3-region; default DefaultS3Region
	Bucket         string // --s3-bucket (required)
	RootDirectory  string // --s3-root-directory
	ForcePathStyle bool   // --s3-force-path-style
	Insecure       bool   // --s3-secure=false: plain http to the endpoint
	SkipVerify     bool   // --s3-skip-verify
	// BlobRedirect (--blob-redirect) sends clients to presigned URLs; they must then reach the endpoint.
	BlobRedirect bool
	// AccessKey and SecretKey go into the S3 Secret (--s3-access-key-file, --s3-secret-key-file). Without them the
	// pods use the cluster's workload identity; the Secret is referenced as optional.
	AccessKey, SecretKey []byte
}

// Redis is the blob-descriptor cache the replicas share.
type Redis struct {
	Addrs []string // --redis-addr: an existing Redis (HOST:PORT)
	DB    int      // --redis-db
	// Password goes into the Redis Secret (--redis-password-file). With InCluster and no password, one is generated.
	Password []byte
	// InCluster (--with-redis) adds a Redis Deployment and Service (allkeys-lru, no persistence).
	InCluster bool
	Image     string // --redis-image; default DefaultRedisImage
}

func (o Options) objectStorage() bool { return o.Storage == StorageS3 }

func (o Options) redisAddrs() []string {
	if o.Redis.InCluster {
		return []string{fmt.Sprintf("%s:%d", RedisName(o.Name), RedisPort)}
	}
	return o.Redis.Addrs
}

func (o Options) validateObjectStorage() []error {
	var errs []error
	s := o.S3
	if !o.objectStorage() {
		if s.Endpoint != "" || s.Bucket != "" || s.RootDirectory != "" || s.ForcePathStyle || s.Insecure || s.SkipVerify ||
			s.BlobRedirect || len(s.AccessKey) > 0 || len(s.SecretKey) > 0 {
			errs = append(errs, errors.New("--s3-*: only apply with --storage s3"))
		}
		return errs
	}
	shared := storageconfig.S3{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, RootDirectory: s.RootDirectory,
		Secure: !s.Insecure, SkipVerify: s.SkipVerify}
	errs = append(errs, flagProblems(shared.Validate())...)
	if (len(s.AccessKey) > 0) != (len(s.SecretKey) > 0) {
		errs = append(errs, errors.New("--s3-access-key-file, --s3-secret-key-file: give both or neither"))
	}
	if o.ExistingClaim != "" {
		errs = append(errs, errors.New("--existing-claim: only applies with --storage filesystem"))
	}
	if o.StorageClass != nil {
		errs = append(errs, errors.New("--storage-class: only applies with --storage filesystem"))
	}
	if !o.StorageSize.IsZero() {
		errs = append(errs, errors.New("--storage-size: only applies with --storage filesystem"))
	}
	return errs
}

func (o Options) validateRedis() []error {
	var errs []error
	r := o.Redis
	if r.InCluster && len(r.Addrs) > 0 {
		errs = append(errs, errors.New("--with-redis: cannot be combined with --redis-addr"))
	}
	if !r.InCluster && r.Image != "" && r.Image != DefaultRedisImage {
		errs = append(errs, errors.New("--redis-image: only applies with --with-redis"))
	}
	if r.InCluster && r.Image != "" {
		if _, err := reference.ParseNormalizedNamed(r.Image); err != nil {
			errs = append(errs, fmt.Errorf("--redis-image %q: is not a valid image reference: %v", r.Image, err))
		}
	}
	hasRedis := r.InCluster || len(r.Addrs) > 0
	if !hasRedis && len(r.Password) > 0 {
		errs = append(errs, errors.New("--redis-password-file: needs --redis-addr or --with-redis"))
	}
	addrs := r.Addrs
	if len(addrs) == 0 {
		addrs = o.redisAddrs() // the in-cluster Redis, or none
	}
	errs = append(errs, flagProblems(storageconfig.Redis{Addrs: addrs, DB: r.DB}.Validate())...)
	if o.ExternalSecrets && (len(o.S3.AccessKey) > 0 || len(r.Password) > 0) {
		errs = append(errs, errors.New("external secrets: S3 keys and a Redis password cannot be given when the Secrets are provided externally"))
	}
	return errs
}

// flagProblems spells the shared validator's keys as generate's flags.
func flagProblems(ps []*storageconfig.Problem) []error {
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		errs = append(errs, fmt.Errorf("--%s: %w", p.Key, p.Err))
	}
	return errs
}

// needsRedisPassword: an in-cluster Redis always gets a password, generated when none is given.
func (o Options) needsRedisPassword() bool {
	return o.Redis.InCluster && len(o.Redis.Password) == 0 && !o.ExternalSecrets
}

// objectStorageArgs are the serve flags for S3 and the Redis cache.
func (g generator) objectStorageArgs() []string {
	var args []string
	if g.o.objectStorage() {
		s := g.o.S3
		args = append(args, "--storage=s3", "--s3-region="+s.Region, "--s3-bucket="+s.Bucket)
		if s.Endpoint != "" {
			args = append(args, "--s3-endpoint="+s.Endpoint)
		}
		if s.RootDirectory != "" {
			args = append(args, "--s3-root-directory="+s.RootDirectory)
		}
		if s.ForcePathStyle {
			args = append(args, "--s3-force-path-style")
		}
		if s.Insecure {
			args = append(args, "--s3-secure=false")
		}
		if s.SkipVerify {
			args = append(args, "--s3-skip-verify")
		}
		if s.BlobRedirect {
			args = append(args, "--blob-redirect")
		}
	}
	if addrs := g.o.redisAddrs(); len(addrs) > 0 {
		args = append(args, "--redis-addr="+strings.Join(addrs, ","))
		if g.o.Redis.DB != 0 {
			args = append(args, "--redis-db="+strconv.Itoa(g.o.Redis.DB))
		}
	}
	return args
}

// secretEnv reads one key of a Secret; optional Secrets let the user leave them out (workload identity, a Redis
// without a password).
func secretEnv(env, secret, key string, optional bool) corev1.EnvVar {
	ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}
	if optional {
		ref.Optional = ptr.To(true)
	}
	return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}}
}

// env is the registry container's environment: the S3 keys and the Redis password, never in args.
func (g generator) env() []corev1.EnvVar {
	var env []corev1.EnvVar
	if g.o.objectStorage() {
		env = append(env,
			secretEnv("REGISTRY_KIT_S3_ACCESS_KEY", S3SecretName(g.o.Name), S3AccessKeyKey, true),
			secretEnv("REGISTRY_KIT_S3_SECRET_KEY", S3SecretName(g.o.Name), S3SecretKeyKey, true))
	}
	if len(g.o.redisAddrs()) > 0 {
		env = append(env, secretEnv("REGISTRY_KIT_REDIS_PASSWORD", RedisSecretName(g.o.Name), RedisPasswordKey, !g.o.Redis.InCluster))
	}
	return env
}

// affinity spreads replicas over nodes when it can (preferred, so a one-node cluster still runs them all).
func (g generator) affinity() *corev1.Affinity {
	if g.o.Replicas < 2 {
		return nil
	}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: g.selector()},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

// podDisruptionBudget keeps one replica serving through node drains.
func (g generator) podDisruptionBudget() *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: g.meta(g.o.Name),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: g.selector()},
		},
	}
}

func (g generator) redisSelector() map[string]string {
	return map[string]string{LabelName: AppName + "-redis", LabelInstance: g.o.Name}
}

func (g generator) redisMeta() metav1.ObjectMeta {
	m := g.meta(RedisName(g.o.Name))
	m.Labels[LabelName] = AppName + "-redis"
	return m
}

func (g generator) redisService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: g.redisMeta(),
		Spec: corev1.ServiceSpec{
			Selector: g.redisSelector(),
			Ports: []corev1.ServicePort{{Name: "redis", Protocol: corev1.ProtocolTCP, Port: RedisPort,
				TargetPort: intstr.FromString("redis")}},
		},
	}
}

// redisDeployment is a cache only: no persistence, bounded memory, least-recently-used eviction over all keys
// (distribution's descriptors carry no expiry), a password, and the restricted Pod Security Standard.
func (g generator) redisDeployment() *appsv1.Deployment {
	m := g.redisMeta()
	podLabels := g.labels()
	podLabels[LabelName] = AppName + "-redis"
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("redis")}},
		PeriodSeconds: 10, TimeoutSeconds: 3}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: g.redisSelector()},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: g.annotations()},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](redisUID), RunAsGroup: ptr.To[int64](redisUID),
						FSGroup: ptr.To[int64](redisUID), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "redis",
						Image:           g.o.Redis.Image,
						ImagePullPolicy: g.o.ImagePullPolicy,
						// $(REDIS_PASSWORD) is expanded by the kubelet; redis-server rewrites its process title, so the
						// password does not show in ps.
						Args: []string{"redis-server", "--save", "", "--appendonly", "no", "--maxmemory", redisMaxMemory,
							"--maxmemory-policy", "allkeys-lru", "--requirepass", "$(" + redisPasswordEnv + ")"},
						Env:            []corev1.EnvVar{secretEnv(redisPasswordEnv, RedisSecretName(g.o.Name), RedisPasswordKey, false)},
						Ports:          []corev1.ContainerPort{{Name: "redis", ContainerPort: RedisPort, Protocol: corev1.ProtocolTCP}},
						LivenessProbe:  probe,
						ReadinessProbe: probe,
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("384Mi")},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: volumeData, MountPath: "/data"}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
					Volumes: []corev1.Volume{{Name: volumeData, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}
