package manifests

import (
	"fmt"
	"io"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults used when the matching Options field is left at its zero value.
const (
	DefaultNamespace = "docker-registry"
	DefaultName      = "registry"
	// DefaultImage is a local tag, not a public image: nothing public can be pulled on the machines this project
	// targets, so users build and load (or push) registry-kit themselves and pass --image for anything else.
	DefaultImage       = "registry-kit:dev"
	DefaultStorageSize = "10Gi"
	// DefaultAdminUser is the user created with a random password when no users and no htpasswd file are given.
	DefaultAdminUser = "admin"
	// DefaultBcryptCost is the bcrypt cost used to hash Users' passwords.
	DefaultBcryptCost = 10
)

// StorageKind selects where the registry keeps blobs.
type StorageKind string

// StorageFilesystem keeps blobs on a PersistentVolumeClaim mounted at the server's data directory; several
// replicas need a ReadWriteMany claim. StorageS3 (scaleout.go) needs no volume.
const StorageFilesystem StorageKind = "filesystem"

// User is one registry user with a plain-text password, hashed with bcrypt by Generate. Its String, GoString and
// slog value never include the password.
type User struct {
	Name     string
	Password string
}

func (u User) String() string { return u.Name + ":<redacted>" }
func (u User) GoString() string {
	return fmt.Sprintf("manifests.User{Name: %q, Password: <redacted>}", u.Name)
}

// Ingress asks for an Ingress in front of the Service, tuned for registry traffic (no body-size limit, long
// timeouts, no request buffering) for the NGINX ingress controller.
type Ingress struct {
	Host string
	// ClassName is the IngressClass; nil leaves the cluster default.
	ClassName *string
	// TLSSecretName names a kubernetes.io/tls Secret the ingress controller terminates TLS with; empty means HTTP.
	TLSSecretName string
}

// Options are the typed parameters of Generate. The zero value of each field means its default. Validate reports
// problems naming the registry-kit generate flag that sets the field.
type Options struct {
	Namespace string // --namespace; default DefaultNamespace
	// OmitNamespace leaves the Namespace object out, for installing into a namespace that already exists
	// (--create-namespace=false).
	OmitNamespace   bool
	Name            string            // --name: the name of every object; default DefaultName
	Image           string            // --image; default DefaultImage
	ImagePullPolicy corev1.PullPolicy // --image-pull-policy; default IfNotPresent
	Replicas        int32             // --replicas; default 1

	Storage       StorageKind                       // --storage; default StorageFilesystem
	StorageSize   resource.Quantity                 // --storage-size; default DefaultStorageSize
	StorageClass  *string                           // --storage-class; nil uses the cluster default, "" disables dynamic provisioning
	AccessMode    corev1.PersistentVolumeAccessMode // --access-mode; default ReadWriteOnce
	ExistingClaim string                            // --existing-claim: use this claim instead of creating one

	// S3 is the bucket with Storage StorageS3; Redis the blob-descriptor cache replicas share (either storage).
	S3    S3
	Redis Redis

	ServiceType corev1.ServiceType // --service-type; default ClusterIP
	NodePort    int32              // --node-port; 0 lets the cluster choose

	// Resources of the registry container (--requests, --limits); empty means DefaultResources.
	Resources corev1.ResourceRequirements
	// TLSSecretName names a kubernetes.io/tls Secret the server itself serves HTTPS with (--tls-secret).
	TLSSecretName string
	Ingress       *Ingress

	Labels      map[string]string // --label: added to every object and the pod template
	Annotations map[string]string // --annotation: added to every object and the pod template

	// Users are hashed into the htpasswd Secret (--user with --password-stdin).
	Users []User
	// Htpasswd is the content of an existing htpasswd file (--htpasswd-file), bcrypt entries only. Users with the
	// same name replace its entries. With neither Users nor Htpasswd, DefaultAdminUser gets a random password
	// that Generate reports in Set.GeneratedUser.
	Htpasswd   []byte
	BcryptCost int // default DefaultBcryptCost

	// PullerPassword is the password of the pull-only user PullerUser, kept in its own Secret (<name>-puller) so
	// pull secrets and nodes can be given a credential that cannot push. Empty means 18 random bytes, hex encoded,
	// from crypto/rand (as bcrypt's salts).
	PullerPassword string
	// AccessPolicy is the access policy (auth/access YAML) stored next to the htpasswd file in its Secret. Empty
	// means the generated one: every user of the htpasswd file but PullerUser may pull, push and delete every
	// repository, PullerUser may only pull.
	AccessPolicy []byte
	// NoAccessPolicy leaves out the pull-only user and the access policy: every user may do everything, as with
	// an htpasswd Secret that brings no policy (the overlays under manifests/overlays).
	NoAccessPolicy bool

	// HTTPSecret is the secret every replica signs upload state with (--http-secret-file); empty means 32 random
	// bytes from Rand, hex encoded.
	HTTPSecret []byte

	// ExternalSecrets leaves both Secrets out of the output: they are provided another way (a kustomize
	// secretGenerator, or Secrets already in the cluster that must not be rotated). The Deployment still mounts
	// them by name: <name>-htpasswd and <name>-http-secret.
	ExternalSecrets bool

	// Rand is the only source of randomness Generate uses (admin password, HTTP secret). It may be nil when
	// nothing needs generating. bcrypt salts are the exception: x/crypto/bcrypt reads them from crypto/rand.
	Rand io.Reader
}

// DefaultResources are the registry container's resources when Options.Resources is empty.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("512Mi"),
		},
	}
}

// withDefaults returns a copy of o with every zero field replaced by its default.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.ImagePullPolicy == "" {
		o.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Storage == "" {
		o.Storage = StorageFilesystem
	}
	if o.Storage == StorageS3 && o.S3.Region == "" {
		o.S3.Region = DefaultS3Region
	}
	if o.Redis.InCluster && o.Redis.Image == "" {
		o.Redis.Image = DefaultRedisImage
	}
	o.Redis.Addrs = slices.Clone(o.Redis.Addrs)
	if o.StorageSize.IsZero() && o.ExistingClaim == "" && o.Storage != StorageS3 {
		o.StorageSize = resource.MustParse(DefaultStorageSize)
	}
	if o.AccessMode == "" {
		o.AccessMode = corev1.ReadWriteOnce
	}
	if o.ServiceType == "" {
		o.ServiceType = corev1.ServiceTypeClusterIP
	}
	if len(o.Resources.Requests) == 0 && len(o.Resources.Limits) == 0 && len(o.Resources.Claims) == 0 {
		o.Resources = DefaultResources()
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = DefaultBcryptCost
	}
	o.Labels = maps.Clone(o.Labels)
	o.Annotations = maps.Clone(o.Annotations)
	return o
}

// needsRand reports whether Generate will read from Rand for these (defaulted) options.
func (o Options) needsRand() bool {
	if o.ExternalSecrets {
		return false
	}
	return len(o.HTTPSecret) == 0 || (len(o.Users) == 0 && len(o.Htpasswd) == 0) || o.needsRedisPassword()
}
