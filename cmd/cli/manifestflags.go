package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/registry-kit/registry-kit/manifests"
)

// manifestFlags are the generator flags generate and deploy share: the workload, its storage (a claim or S3), the
// Redis cache, and the files credentials are read from. Credentials never come from a flag's value (flags show
// in ps and shell history).
type manifestFlags struct {
	name            string
	image           string
	pullPolicy      string
	replicas        int32
	storage         string
	storageSize     string
	storageClass    string
	accessMode      string
	existingClaim   string
	tlsSecret       string
	htpasswdFile    string
	httpSecretFile  string
	s3              manifests.S3
	s3Secure        bool
	s3AccessKeyFile string
	s3SecretKeyFile string
	redis           manifests.Redis
	redisPwFile     string

	// names are the flags addFlags registered, so deploy can refuse them with -k.
	names []string
}

// defaultImage is the --image default: this release's public image, or the local development tag.
func defaultImage() string { return manifests.ImageForVersion(version()) }

// addFlags registers the shared flags on f; htpasswdUsage describes --htpasswd-file, whose default differs.
func (m *manifestFlags) addFlags(dst *pflag.FlagSet, htpasswdUsage string) {
	f := pflag.NewFlagSet("generator", pflag.ContinueOnError)
	f.StringVar(&m.name, "name", manifests.DefaultName, "name of every object")
	f.StringVar(&m.image, "image", defaultImage(), "registry-kit image the nodes can pull (a release's own image; for a development build the local tag registry-kit:dev: build it with make image and import or push it)")
	f.StringVar(&m.pullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "Always, IfNotPresent or Never")
	f.Int32Var(&m.replicas, "replicas", 1, "registry pods (more than 1 needs --storage s3 or --access-mode ReadWriteMany)")
	f.StringVar(&m.storage, "storage", string(manifests.StorageFilesystem), "where blobs are kept: filesystem (a PersistentVolumeClaim) or s3 (S3-compatible object storage; several replicas)")
	f.StringVar(&m.s3.Endpoint, "s3-endpoint", "", "S3 API endpoint as the pods reach it, e.g. http://minio.storage.svc:9000 (default: AWS S3)")
	f.StringVar(&m.s3.Region, "s3-region", manifests.DefaultS3Region, "S3 region (any value for S3-compatible servers)")
	f.StringVar(&m.s3.Bucket, "s3-bucket", "", "S3 bucket (must exist)")
	f.StringVar(&m.s3.RootDirectory, "s3-root-directory", "", "key prefix inside the bucket, e.g. /registry")
	f.BoolVar(&m.s3.ForcePathStyle, "s3-force-path-style", false, "address the bucket as ENDPOINT/BUCKET (MinIO, Ceph)")
	f.BoolVar(&m.s3Secure, "s3-secure", true, "use TLS to the S3 endpoint")
	f.BoolVar(&m.s3.SkipVerify, "s3-skip-verify", false, "accept any TLS certificate from the S3 endpoint")
	f.StringVar(&m.s3AccessKeyFile, "s3-access-key-file", "", "file holding the S3 access key, put into Secret <name>-s3 (default: the pods' workload identity)")
	f.StringVar(&m.s3SecretKeyFile, "s3-secret-key-file", "", "file holding the S3 secret key, put into Secret <name>-s3")
	f.BoolVar(&m.s3.BlobRedirect, "blob-redirect", false, "redirect blob downloads to presigned S3 URLs (clients must reach the endpoint)")
	f.StringSliceVar(&m.redis.Addrs, "redis-addr", nil, "HOST:PORT of an existing Redis the replicas share as blob-descriptor cache")
	f.IntVar(&m.redis.DB, "redis-db", 0, "Redis database number")
	f.StringVar(&m.redisPwFile, "redis-password-file", "", "file holding the Redis password, put into Secret <name>-redis")
	f.BoolVar(&m.redis.InCluster, "with-redis", false, "add a Redis Deployment and Service (cache only: allkeys-lru, no persistence, a generated password)")
	f.StringVar(&m.redis.Image, "redis-image", manifests.DefaultRedisImage, "Redis image for --with-redis (the default is public: mirror it where the nodes can pull)")
	f.StringVar(&m.storageSize, "storage-size", manifests.DefaultStorageSize, "size of the volume claim")
	f.StringVar(&m.storageClass, "storage-class", "", `storage class of the claim (default: the cluster's default; "" given explicitly disables dynamic provisioning)`)
	f.StringVar(&m.accessMode, "access-mode", string(corev1.ReadWriteOnce), "access mode of the claim: ReadWriteOnce, ReadWriteOncePod or ReadWriteMany")
	f.StringVar(&m.existingClaim, "existing-claim", "", "use this PersistentVolumeClaim instead of creating one")
	f.StringVar(&m.tlsSecret, "tls-secret", "", "kubernetes.io/tls Secret the registry serves HTTPS with")
	f.StringVar(&m.htpasswdFile, "htpasswd-file", "", htpasswdUsage)
	f.StringVar(&m.httpSecretFile, "http-secret-file", "", "file holding the HTTP secret replicas share (default: 32 random bytes)")
	f.VisitAll(func(fl *pflag.Flag) { m.names = append(m.names, fl.Name) })
	dst.AddFlagSet(f)
}

// apply sets the shared fields of o from the flags and reads the files they name. It returns every problem it
// finds; o still gets whatever did parse, so the caller's Validate can report the rest in the same run.
func (m *manifestFlags) apply(changed func(string) bool, o *manifests.Options) []error {
	o.Name = m.name
	o.Image = m.image
	o.ImagePullPolicy = corev1.PullPolicy(m.pullPolicy)
	o.Replicas = m.replicas
	o.Storage = manifests.StorageKind(m.storage)
	o.AccessMode = corev1.PersistentVolumeAccessMode(m.accessMode)
	o.ExistingClaim = m.existingClaim
	o.TLSSecretName = m.tlsSecret
	o.S3 = m.s3
	o.S3.Insecure = !m.s3Secure
	o.Redis = m.redis
	if !o.Redis.InCluster && !changed("redis-image") {
		o.Redis.Image = ""
	}
	var errs []error
	if o.Storage == manifests.StorageS3 && changed("access-mode") {
		errs = append(errs, errors.New("--access-mode: only applies with --storage filesystem"))
	}
	if m.replicas == 0 {
		errs = append(errs, errors.New("--replicas 0: must be 1 or more"))
	}
	if (m.existingClaim == "" && o.Storage != manifests.StorageS3) || changed("storage-size") {
		q, err := resource.ParseQuantity(m.storageSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("--storage-size %q: %w", m.storageSize, err))
		}
		o.StorageSize = q
	}
	if changed("storage-class") {
		o.StorageClass = &m.storageClass
	}
	if m.htpasswdFile != "" {
		b, err := os.ReadFile(m.htpasswdFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--htpasswd-file: reading %w", err))
		} else if len(b) == 0 {
			errs = append(errs, fmt.Errorf("--htpasswd-file %s: is empty", m.htpasswdFile))
		}
		o.Htpasswd = b
	}
	for _, sf := range []struct {
		flag, path string
		dst        *[]byte
	}{
		{"--http-secret-file", m.httpSecretFile, &o.HTTPSecret},
		{"--s3-access-key-file", m.s3AccessKeyFile, &o.S3.AccessKey},
		{"--s3-secret-key-file", m.s3SecretKeyFile, &o.S3.SecretKey},
		{"--redis-password-file", m.redisPwFile, &o.Redis.Password},
	} {
		if sf.path == "" {
			continue
		}
		b, err := os.ReadFile(sf.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: reading %w", sf.flag, err))
		}
		*sf.dst = []byte(strings.TrimRight(string(b), "\r\n"))
		if err == nil && len(*sf.dst) == 0 {
			errs = append(errs, fmt.Errorf("%s %s: is empty", sf.flag, sf.path))
		}
	}
	return errs
}
