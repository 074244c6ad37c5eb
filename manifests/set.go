package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Set is the output of Generate. Nil fields are objects that were not asked for.
type Set struct {
	Namespace             *corev1.Namespace
	HtpasswdSecret        *corev1.Secret
	HTTPSecret            *corev1.Secret
	PullerSecret          *corev1.Secret // the pull-only user's name and password (kubernetes.io/basic-auth)
	S3Secret              *corev1.Secret // the S3 keys, when given
	RedisSecret           *corev1.Secret // the Redis password, when given or generated
	PersistentVolumeClaim *corev1.PersistentVolumeClaim
	RedisService          *corev1.Service // --with-redis
	Service               *corev1.Service
	RedisDeployment       *appsv1.Deployment // --with-redis
	Deployment            *appsv1.Deployment
	PodDisruptionBudget   *policyv1.PodDisruptionBudget // more than one replica
	Ingress               *networkingv1.Ingress

	// GeneratedUser is the admin user Generate created with a random password because no user was given, or nil.
	// The caller shows its password once to whoever asked; it is in no other output but the (hashed) Secret.
	GeneratedUser *User
	// Puller is the pull-only user (its password is in PullerSecret), or nil with external Secrets.
	Puller *User
}

// Objects returns the objects in apply order: Namespace, Secrets, PersistentVolumeClaim, Services, Deployments,
// PodDisruptionBudget, Ingress.
func (s *Set) Objects() []runtime.Object {
	var objs []runtime.Object
	add := func(o runtime.Object, present bool) {
		if present {
			objs = append(objs, o)
		}
	}
	add(s.Namespace, s.Namespace != nil)
	add(s.HtpasswdSecret, s.HtpasswdSecret != nil)
	add(s.HTTPSecret, s.HTTPSecret != nil)
	add(s.PullerSecret, s.PullerSecret != nil)
	add(s.S3Secret, s.S3Secret != nil)
	add(s.RedisSecret, s.RedisSecret != nil)
	add(s.PersistentVolumeClaim, s.PersistentVolumeClaim != nil)
	add(s.RedisService, s.RedisService != nil)
	add(s.Service, s.Service != nil)
	add(s.RedisDeployment, s.RedisDeployment != nil)
	add(s.Deployment, s.Deployment != nil)
	add(s.PodDisruptionBudget, s.PodDisruptionBudget != nil)
	add(s.Ingress, s.Ingress != nil)
	return objs
}

// YAML renders the objects as one YAML stream, documents separated by "---".
func (s *Set) YAML() ([]byte, error) {
	var b bytes.Buffer
	for i, o := range s.Objects() {
		y, err := objectYAML(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// JSON renders the objects as an indented v1 List.
func (s *Set) JSON() ([]byte, error) {
	list := metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, o := range s.Objects() {
		m, err := cleanObject(o)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encoding %s as JSON: %w", describe(o), err)
		}
		list.Items = append(list.Items, runtime.RawExtension{Raw: raw})
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding list as JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// File is one file of a kustomize directory.
type File struct {
	Name string
	Data []byte
	// Secret marks a file holding credentials: write it readable by its owner only.
	Secret bool
}

// KustomizationFile is the name of the kustomization in a directory written by Files.
const KustomizationFile = "kustomization.yaml"

// Files renders the set as a kustomize directory: one file per object, named <kind>-<name>.yaml, and a
// kustomization.yaml listing them in apply order.
func (s *Set) Files() ([]File, error) {
	k := kusttypes.Kustomization{TypeMeta: kusttypes.TypeMeta{
		APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind,
	}}
	var files []File
	for _, o := range s.Objects() {
		y, err := objectYAML(o)
		if err != nil {
			return nil, err
		}
		m, err := metaOf(o)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s-%s.yaml", strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind), m.GetName())
		_, secret := o.(*corev1.Secret)
		files = append(files, File{Name: name, Data: y, Secret: secret})
		k.Resources = append(k.Resources, name)
	}
	y, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", KustomizationFile, err)
	}
	return append(files, File{Name: KustomizationFile, Data: y}), nil
}

func objectYAML(o runtime.Object) ([]byte, error) {
	m, err := cleanObject(o)
	if err != nil {
		return nil, err
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s as YAML: %w", describe(o), err)
	}
	return y, nil
}

// cleanObject converts o to its unstructured form without the fields a generated object never carries: status
// (the cluster writes it) and an empty spec.
func cleanObject(o runtime.Object) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", describe(o), err)
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(m, "spec")
	}
	return m, nil
}

func metaOf(o runtime.Object) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("object of kind %s has no metadata", o.GetObjectKind().GroupVersionKind().Kind)
	}
	return m, nil
}

func describe(o runtime.Object) string {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if m, ok := o.(metav1.Object); ok {
		return kind + " " + m.GetName()
	}
	return kind
}
