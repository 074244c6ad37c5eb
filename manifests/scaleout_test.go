package manifests

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestScaleOutObjects(t *testing.T) {
	s := mustGenerate(t, Options{
		Storage: StorageS3, Replicas: 2, Rand: seededRand(9), BcryptCost: 4,
		S3:    S3{Bucket: "registry", AccessKey: []byte("objects-access-key"), SecretKey: []byte("objects-secret-key")},
		Redis: Redis{InCluster: true},
	})
	if s.PersistentVolumeClaim != nil {
		t.Error("object storage generated a volume claim")
	}
	if s.PodDisruptionBudget == nil || s.PodDisruptionBudget.Spec.MinAvailable.IntValue() != 1 {
		t.Error("two replicas need a PodDisruptionBudget with minAvailable 1")
	}
	pod := s.Deployment.Spec.Template.Spec
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil ||
		pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
		t.Error("replicas should prefer different nodes")
	}
	if pod.Volumes[0].EmptyDir == nil {
		t.Errorf("data volume = %+v, want an emptyDir", pod.Volumes[0])
	}
	c := pod.Containers[0]
	args := strings.Join(c.Args, " ")
	if strings.Contains(args, "objects-") || !strings.Contains(args, "--redis-addr=registry-redis:6379") {
		t.Errorf("registry args = %s; want the in-cluster Redis and no credential", args)
	}
	var envs []string
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not read from a Secret", e.Name)
		}
		envs = append(envs, e.Name)
	}
	if diff := cmp.Diff([]string{"REGISTRY_KIT_S3_ACCESS_KEY", "REGISTRY_KIT_S3_SECRET_KEY", "REGISTRY_KIT_REDIS_PASSWORD"}, envs); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if s.RedisSecret == nil || len(s.RedisSecret.Data[RedisPasswordKey]) != 2*httpSecretBytes {
		t.Error("the in-cluster Redis needs a generated password")
	}

	r := s.RedisDeployment.Spec.Template.Spec
	rc := r.Containers[0]
	if !slices.Contains(rc.Args, "allkeys-lru") || !slices.Contains(rc.Args, "$(REDIS_PASSWORD)") {
		t.Errorf("redis args = %v; want allkeys-lru and the password from env", rc.Args)
	}
	if r.SecurityContext.RunAsNonRoot == nil || !*r.SecurityContext.RunAsNonRoot || *rc.SecurityContext.AllowPrivilegeEscalation ||
		!*rc.SecurityContext.ReadOnlyRootFilesystem || rc.SecurityContext.Capabilities.Drop[0] != "ALL" ||
		r.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the Redis pod must meet the restricted Pod Security Standard")
	}
	if s.RedisService.Spec.Selector[LabelName] == s.Service.Spec.Selector[LabelName] {
		t.Error("the Redis Service selects the registry pods")
	}
}

func TestSingleReplicaHasNoPDB(t *testing.T) {
	s := mustGenerate(t, Options{Storage: StorageS3, ExternalSecrets: true, S3: S3{Bucket: "registry"}})
	if s.PodDisruptionBudget != nil || s.Deployment.Spec.Template.Spec.Affinity != nil {
		t.Error("one replica: a PodDisruptionBudget with minAvailable 1 would block every node drain")
	}
	if s.RedisSecret != nil || s.S3Secret != nil {
		t.Error("no Secret should be generated for credentials that were not given")
	}
}
