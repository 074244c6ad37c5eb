package manifests

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

func mustGenerate(t *testing.T, o Options) *Set {
	t.Helper()
	s, err := Generate(o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func secretHtpasswd(t *testing.T, s *Set) *htpasswd.File {
	t.Helper()
	f, err := htpasswd.Parse(bytes.NewReader(s.HtpasswdSecret.Data[HtpasswdKey]))
	if err != nil {
		t.Fatalf("parsing the generated htpasswd Secret: %v", err)
	}
	return f
}

func TestGeneratedAdmin(t *testing.T) {
	s := mustGenerate(t, Options{Rand: seededRand(9), BcryptCost: 4})
	u := s.GeneratedUser
	if u == nil || u.Name != DefaultAdminUser || len(u.Password) != 2*generatedPasswordBytes {
		t.Fatalf("GeneratedUser = %v, want %s with a %d-character password", u, DefaultAdminUser, 2*generatedPasswordBytes)
	}
	if !secretHtpasswd(t, s).Verify(u.Name, u.Password) {
		t.Error("the generated password does not verify against the htpasswd Secret")
	}
	for _, render := range []func() ([]byte, error){s.YAML, s.JSON} {
		out, err := render()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte(u.Password)) {
			t.Error("rendered output contains the plain-text admin password")
		}
	}
	if got := len(s.HTTPSecret.Data[HTTPSecretKey]); got != 2*httpSecretBytes {
		t.Errorf("HTTP secret is %d bytes, want %d", got, 2*httpSecretBytes)
	}
}

// TestUsersOverHtpasswd: --user entries are added to an --htpasswd-file, replacing a user of the same name; no
// admin is generated.
func TestUsersOverHtpasswd(t *testing.T) {
	s := mustGenerate(t, Options{
		Htpasswd:   []byte(fixtureHtpasswd),
		Users:      []User{{Name: "alice", Password: "new-alice-password"}, {Name: "bob", Password: "bob-password"}},
		BcryptCost: 4,
		HTTPSecret: []byte("x"),
	})
	if s.GeneratedUser != nil {
		t.Errorf("GeneratedUser = %v, want none when users are given", s.GeneratedUser)
	}
	f := secretHtpasswd(t, s)
	if diff := cmp.Diff([]string{"alice", "bob", PullerUser}, f.Users()); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if !f.Verify("alice", "new-alice-password") || f.Verify("alice", "alice-test-password") || !f.Verify("bob", "bob-password") {
		t.Error("passwords in the Secret are not the ones given")
	}
}

func TestRandomSourceErrors(t *testing.T) {
	_, err := Generate(Options{Rand: bytes.NewReader([]byte("short"))})
	if err == nil || !strings.Contains(err.Error(), "generating the admin password: reading random bytes") {
		t.Fatalf("got %v, want a random-source error", err)
	}
}

func TestStrategyFollowsAccessMode(t *testing.T) {
	tests := []struct {
		name     string
		mode     corev1.PersistentVolumeAccessMode
		replicas int32
		want     appsv1.DeploymentStrategyType
	}{
		{name: "rwo", mode: corev1.ReadWriteOnce, replicas: 1, want: appsv1.RecreateDeploymentStrategyType},
		{name: "rwop", mode: corev1.ReadWriteOncePod, replicas: 1, want: appsv1.RecreateDeploymentStrategyType},
		{name: "rwx", mode: corev1.ReadWriteMany, replicas: 2, want: appsv1.RollingUpdateDeploymentStrategyType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustGenerate(t, Options{ExternalSecrets: true, AccessMode: tc.mode, Replicas: tc.replicas})
			if got := s.Deployment.Spec.Strategy.Type; got != tc.want {
				t.Errorf("strategy = %s, want %s", got, tc.want)
			}
			if got := *s.Deployment.Spec.Replicas; got != tc.replicas {
				t.Errorf("replicas = %d, want %d", got, tc.replicas)
			}
		})
	}
}

// TestRestrictedPodSecurity checks the pod against each control of the "restricted" Pod Security Standard that
// the spec can violate (the e2e test has a real kube-apiserver enforce it too).
func TestRestrictedPodSecurity(t *testing.T) {
	s := mustGenerate(t, Options{ExternalSecrets: true, TLSSecretName: "tls"})
	pod := s.Deployment.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod must run as a non-root user")
	}
	if psc.FSGroup == nil || *psc.FSGroup != nonRootID {
		t.Error("pod must set fsGroup so the volume is writable")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccomp profile must be RuntimeDefault")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("pod must not use host namespaces")
	}
	for _, v := range pod.Volumes {
		if v.Secret == nil && v.PersistentVolumeClaim == nil && v.EmptyDir == nil {
			t.Errorf("volume %s is of a kind restricted does not allow", v.Name)
		}
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s must set allowPrivilegeEscalation false", c.Name)
			continue
		}
		if sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s must drop ALL capabilities and add none", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s must have a read-only root filesystem", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("container %s uses a host port", c.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			if m.SubPath != "" || m.SubPathExpr != "" {
				t.Errorf("mount %s uses subPath; Secret updates would not reach the pod", m.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				t.Errorf("container %s: probes must be HTTPS GETs when TLS is on", c.Name)
			}
		}
	}
	if got := s.Namespace.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace enforce label = %q, want restricted", got)
	}
}

// TestConfigHash: the hash follows the server's configuration, not the users.
func TestConfigHash(t *testing.T) {
	hash := func(o Options) string {
		t.Helper()
		o.BcryptCost = 4
		return mustGenerate(t, o).Deployment.Spec.Template.Annotations[ConfigHashAnnotation]
	}
	base := Options{Users: []User{{Name: "a", Password: "p"}}, HTTPSecret: []byte("s")}
	h := hash(base)
	if len(h) != 64 {
		t.Fatalf("config hash %q is not a sha256", h)
	}
	otherUsers := base
	otherUsers.Users = []User{{Name: "b", Password: "q"}}
	if hash(otherUsers) != h {
		t.Error("changing users changed the config hash: pods would restart although htpasswd reloads live")
	}
	withTLS := base
	withTLS.TLSSecretName = "tls"
	if hash(withTLS) == h {
		t.Error("turning TLS on did not change the config hash")
	}
}

func TestObjectsOrderAndFiles(t *testing.T) {
	s := mustGenerate(t, Options{HTTPSecret: []byte("s"), Htpasswd: []byte(fixtureHtpasswd), Ingress: &Ingress{Host: "r.example.com"}})
	var kinds []string
	for _, o := range s.Objects() {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	want := []string{"Namespace", "Secret", "Secret", "Secret", "PersistentVolumeClaim", "Service", "Deployment", "Ingress"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("object order (-want +got):\n%s", diff)
	}
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		if f.Secret != strings.HasPrefix(f.Name, "secret-") {
			t.Errorf("%s: Secret = %v", f.Name, f.Secret)
		}
	}
	wantNames := []string{
		"namespace-docker-registry.yaml", "secret-registry-htpasswd.yaml", "secret-registry-http-secret.yaml",
		"secret-registry-puller.yaml", "persistentvolumeclaim-registry.yaml", "service-registry.yaml", "deployment-registry.yaml",
		"ingress-registry.yaml", KustomizationFile,
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("file names (-want +got):\n%s", diff)
	}
}

func TestExistingClaimAndOmitNamespace(t *testing.T) {
	s := mustGenerate(t, Options{ExternalSecrets: true, OmitNamespace: true, ExistingClaim: "mine"})
	if s.Namespace != nil || s.PersistentVolumeClaim != nil || s.HtpasswdSecret != nil || s.HTTPSecret != nil {
		t.Error("objects that were not asked for are present")
	}
	if got := s.Deployment.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName; got != "mine" {
		t.Errorf("claim = %q, want mine", got)
	}
}
