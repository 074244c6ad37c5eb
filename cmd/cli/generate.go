package cli

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/registry-kit/registry-kit/manifests"
)

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4096

type generateOptions struct {
	namespace       string
	createNamespace bool
	name            string
	image           string
	pullPolicy      string
	replicas        int32
	storage         string
	storageSize     string
	storageClass    string
	accessMode      string
	existingClaim   string
	serviceType     string
	nodePort        int32
	requests        map[string]string
	limits          map[string]string
	tlsSecret       string
	ingressHost     string
	ingressClass    string
	ingressTLS      string
	labels          map[string]string
	annotations     map[string]string
	user            string
	passwordStdin   bool
	htpasswdFile    string
	bcryptCost      int
	httpSecretFile  string
	externalSecrets bool
	s3              manifests.S3
	s3Secure        bool
	s3AccessKeyFile string
	s3SecretKeyFile string
	redis           manifests.Redis
	redisPwFile     string
	output          string
	outputDir       string
}

func newGenerateCommand(streams IOStreams) *cobra.Command {
	o := &generateOptions{}
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write the Kubernetes objects that run registry-kit (YAML, JSON or a kustomize directory)",
		Long: `Write the objects that run registry-kit in its own namespace: Namespace, the htpasswd and HTTP-secret
Secrets, PersistentVolumeClaim, Service and Deployment (and an Ingress with --ingress-host), in apply order.

Users come from --user NAME with the password on standard input (--password-stdin), or from an existing
bcrypt htpasswd file (--htpasswd-file). With neither, user "admin" gets a random password, printed once on
standard error. Every option is checked before anything is written.`,
		Example: `  registry-kit generate > registry.yaml
  registry-kit generate --service-type NodePort --node-port 30500 --storage-size 1Gi
  printf '%s' "$PASSWORD" | registry-kit generate --user alice --password-stdin -o json
  registry-kit generate --htpasswd-file ./htpasswd --output-dir ./registry-manifests
  registry-kit generate --storage s3 --replicas 3 --s3-endpoint http://minio.storage.svc:9000 --s3-secure=false \
      --s3-force-path-style --s3-bucket registry --s3-access-key-file ak --s3-secret-key-file sk --with-redis`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mopts, err := o.toOptions(cmd, streams.In)
			if err != nil {
				return err
			}
			return o.run(streams, mopts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.namespace, "namespace", "n", manifests.DefaultNamespace, "namespace of the registry")
	f.BoolVar(&o.createNamespace, "create-namespace", true, "include the Namespace object (labelled to enforce the restricted Pod Security Standard)")
	f.StringVar(&o.name, "name", manifests.DefaultName, "name of every object")
	f.StringVar(&o.image, "image", manifests.DefaultImage, "registry-kit image (the default is a local tag: build and load it, or push it somewhere the nodes can pull)")
	f.StringVar(&o.pullPolicy, "image-pull-policy", string(corev1.PullIfNotPresent), "Always, IfNotPresent or Never")
	f.Int32Var(&o.replicas, "replicas", 1, "registry pods (more than 1 needs --storage s3 or --access-mode ReadWriteMany)")
	f.StringVar(&o.storage, "storage", string(manifests.StorageFilesystem), "where blobs are kept: filesystem (a PersistentVolumeClaim) or s3 (S3-compatible object storage; several replicas)")
	f.StringVar(&o.s3.Endpoint, "s3-endpoint", "", "S3 API endpoint as the pods reach it, e.g. http://minio.storage.svc:9000 (default: AWS S3)")
	f.StringVar(&o.s3.Region, "s3-region", manifests.DefaultS3Region, "S3 region (any value for S3-compatible servers)")
	f.StringVar(&o.s3.Bucket, "s3-bucket", "", "S3 bucket (must exist)")
	f.StringVar(&o.s3.RootDirectory, "s3-root-directory", "", "key prefix inside the bucket, e.g. /registry")
	f.BoolVar(&o.s3.ForcePathStyle, "s3-force-path-style", false, "address the bucket as ENDPOINT/BUCKET (MinIO, Ceph)")
	f.BoolVar(&o.s3Secure, "s3-secure", true, "use TLS to the S3 endpoint")
	f.BoolVar(&o.s3.SkipVerify, "s3-skip-verify", false, "accept any TLS certificate from the S3 endpoint")
	f.StringVar(&o.s3AccessKeyFile, "s3-access-key-file", "", "file holding the S3 access key, put into Secret <name>-s3 (default: the pods' workload identity)")
	f.StringVar(&o.s3SecretKeyFile, "s3-secret-key-file", "", "file holding the S3 secret key, put into Secret <name>-s3")
	f.BoolVar(&o.s3.BlobRedirect, "blob-redirect", false, "redirect blob downloads to presigned S3 URLs (clients must reach the endpoint)")
	f.StringSliceVar(&o.redis.Addrs, "redis-addr", nil, "HOST:PORT of an existing Redis the replicas share as blob-descriptor cache")
	f.IntVar(&o.redis.DB, "redis-db", 0, "Redis database number")
	f.StringVar(&o.redisPwFile, "redis-password-file", "", "file holding the Redis password, put into Secret <name>-redis")
	f.BoolVar(&o.redis.InCluster, "with-redis", false, "add a Redis Deployment and Service (cache only: allkeys-lru, no persistence, a generated password)")
	f.StringVar(&o.redis.Image, "redis-image", manifests.DefaultRedisImage, "Redis image for --with-redis (the default is public: mirror it where the nodes can pull)")
	f.StringVar(&o.storageSize, "storage-size", manifests.DefaultStorageSize, "size of the volume claim")
	f.StringVar(&o.storageClass, "storage-class", "", `storage class of the claim (default: the cluster's default; "" given explicitly disables dynamic provisioning)`)
	f.StringVar(&o.accessMode, "access-mode", string(corev1.ReadWriteOnce), "access mode of the claim: ReadWriteOnce, ReadWriteOncePod or ReadWriteMany")
	f.StringVar(&o.existingClaim, "existing-claim", "", "use this PersistentVolumeClaim instead of creating one")
	f.StringVar(&o.serviceType, "service-type", string(corev1.ServiceTypeClusterIP), "ClusterIP, NodePort or LoadBalancer")
	f.Int32Var(&o.nodePort, "node-port", 0, "fixed node port, 30000-32767 (0 lets the cluster choose)")
	f.StringToStringVar(&o.requests, "requests", nil, "container resource requests, e.g. cpu=250m,memory=256Mi (with neither --requests nor --limits: cpu=100m,memory=128Mi and a memory=512Mi limit)")
	f.StringToStringVar(&o.limits, "limits", nil, "container resource limits, e.g. memory=512Mi")
	f.StringVar(&o.tlsSecret, "tls-secret", "", "kubernetes.io/tls Secret the registry serves HTTPS with")
	f.StringVar(&o.ingressHost, "ingress-host", "", "add an NGINX Ingress for this host (no body-size limit)")
	f.StringVar(&o.ingressClass, "ingress-class", "", "IngressClass of the Ingress (default: the cluster's default)")
	f.StringVar(&o.ingressTLS, "ingress-tls-secret", "", "kubernetes.io/tls Secret the Ingress terminates TLS with")
	f.StringToStringVar(&o.labels, "label", nil, "extra label on every object, KEY=VALUE (repeatable)")
	f.StringToStringVar(&o.annotations, "annotation", nil, "extra annotation on every object, KEY=VALUE (repeatable)")
	f.StringVar(&o.user, "user", "", "registry user to create; the password is read from standard input (--password-stdin)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the --user password from the first line of standard input")
	f.StringVar(&o.htpasswdFile, "htpasswd-file", "", "existing bcrypt htpasswd file with the registry's users")
	f.IntVar(&o.bcryptCost, "bcrypt-cost", manifests.DefaultBcryptCost, "bcrypt cost for --user and a generated admin")
	f.StringVar(&o.httpSecretFile, "http-secret-file", "", "file holding the HTTP secret replicas share (default: 32 random bytes)")
	f.BoolVar(&o.externalSecrets, "external-secrets", false, "leave both Secrets out (they are created another way); the Deployment still mounts them by name")
	f.StringVarP(&o.output, "output", "o", "yaml", "yaml (a ---separated stream) or json (a v1 List)")
	f.StringVar(&o.outputDir, "output-dir", "", "write one file per object plus a kustomization.yaml into this directory instead of standard output")
	return cmd
}

// toOptions turns the flags (and the files and standard input they point to) into manifests.Options and validates
// them. Every problem is reported at once; nothing has been written when it returns an error.
func (o *generateOptions) toOptions(cmd *cobra.Command, stdin io.Reader) (manifests.Options, error) {
	changed := cmd.Flags().Changed
	m := manifests.Options{
		Namespace:       o.namespace,
		OmitNamespace:   !o.createNamespace,
		Name:            o.name,
		Image:           o.image,
		ImagePullPolicy: corev1.PullPolicy(o.pullPolicy),
		Replicas:        o.replicas,
		Storage:         manifests.StorageKind(o.storage),
		AccessMode:      corev1.PersistentVolumeAccessMode(o.accessMode),
		ExistingClaim:   o.existingClaim,
		ServiceType:     corev1.ServiceType(o.serviceType),
		NodePort:        o.nodePort,
		TLSSecretName:   o.tlsSecret,
		Labels:          o.labels,
		Annotations:     o.annotations,
		BcryptCost:      o.bcryptCost,
		ExternalSecrets: o.externalSecrets,
		S3:              o.s3,
		Redis:           o.redis,
		Rand:            rand.Reader,
	}
	m.S3.Insecure = !o.s3Secure
	if !m.Redis.InCluster && !changed("redis-image") {
		m.Redis.Image = ""
	}
	var errs []error
	if m.Storage == manifests.StorageS3 && changed("access-mode") {
		errs = append(errs, errors.New("--access-mode: only applies with --storage filesystem"))
	}
	if o.replicas == 0 {
		errs = append(errs, errors.New("--replicas 0: must be 1 or more"))
	}
	if (o.existingClaim == "" && m.Storage != manifests.StorageS3) || changed("storage-size") {
		q, err := resource.ParseQuantity(o.storageSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("--storage-size %q: %w", o.storageSize, err))
		}
		m.StorageSize = q
	}
	if changed("storage-class") {
		m.StorageClass = &o.storageClass
	}
	var err error
	if m.Resources.Requests, err = parseResourceList("--requests", o.requests); err != nil {
		errs = append(errs, err)
	}
	if m.Resources.Limits, err = parseResourceList("--limits", o.limits); err != nil {
		errs = append(errs, err)
	}
	if o.ingressHost != "" || o.ingressClass != "" || o.ingressTLS != "" {
		m.Ingress = &manifests.Ingress{Host: o.ingressHost, TLSSecretName: o.ingressTLS}
		if changed("ingress-class") {
			m.Ingress.ClassName = &o.ingressClass
		}
	}
	switch {
	case o.output != "yaml" && o.output != "json":
		errs = append(errs, fmt.Errorf("--output %q: must be yaml or json", o.output))
	case o.outputDir != "" && changed("output"):
		errs = append(errs, errors.New("--output: cannot be combined with --output-dir (which writes YAML files)"))
	}
	errs = append(errs, o.credentials(&m, stdin)...)
	// Validate what did parse too, so one run reports every problem.
	errs = append(errs, m.Validate())
	return m, errors.Join(errs...)
}

// credentials reads the users, htpasswd file and HTTP secret into m. Passwords only ever come from standard
// input, never from a flag (flags are visible in ps and shell history).
func (o *generateOptions) credentials(m *manifests.Options, stdin io.Reader) []error {
	var errs []error
	switch {
	case o.user != "" && !o.passwordStdin:
		errs = append(errs, fmt.Errorf("--user %q: needs --password-stdin (passwords are never taken from flags)", o.user))
	case o.user == "" && o.passwordStdin:
		errs = append(errs, errors.New("--password-stdin: needs --user"))
	case o.user != "":
		pw, err := readStdinPassword(stdin)
		if err != nil {
			errs = append(errs, fmt.Errorf("--password-stdin: %w", err))
			break
		}
		m.Users = []manifests.User{{Name: o.user, Password: pw}}
	}
	if o.htpasswdFile != "" {
		b, err := os.ReadFile(o.htpasswdFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--htpasswd-file: reading %w", err))
		} else if len(b) == 0 {
			errs = append(errs, fmt.Errorf("--htpasswd-file %s: is empty", o.htpasswdFile))
		}
		m.Htpasswd = b
	}
	for _, sf := range []struct {
		flag, path string
		dst        *[]byte
	}{
		{"--http-secret-file", o.httpSecretFile, &m.HTTPSecret},
		{"--s3-access-key-file", o.s3AccessKeyFile, &m.S3.AccessKey},
		{"--s3-secret-key-file", o.s3SecretKeyFile, &m.S3.SecretKey},
		{"--redis-password-file", o.redisPwFile, &m.Redis.Password},
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

// readStdinPassword reads the first line of r, without its line ending.
func readStdinPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordInput)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}

func parseResourceList(flag string, in map[string]string) (corev1.ResourceList, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	var errs []error
	for k, v := range in {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s=%q: %w", flag, k, v, err))
			continue
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, errors.Join(errs...)
}

// run generates the objects and writes them; the generated admin password, if any, goes to standard error once.
func (o *generateOptions) run(streams IOStreams, opts manifests.Options) error {
	set, err := manifests.Generate(opts)
	if err != nil {
		return fmt.Errorf("generating manifests: %w", err)
	}
	if o.outputDir != "" {
		err = writeDir(o.outputDir, set)
	} else {
		err = writeStream(streams.Out, set, o.output)
	}
	if err != nil {
		return err
	}
	if u := set.GeneratedUser; u != nil {
		fmt.Fprintf(streams.ErrOut, "Generated registry user %q with password: %s\n"+
			"It is shown only this once and stored only as a bcrypt hash in Secret %s/%s.\n",
			u.Name, u.Password, set.HtpasswdSecret.Namespace, set.HtpasswdSecret.Name)
	}
	return nil
}

func writeStream(w io.Writer, set *manifests.Set, format string) error {
	render := set.YAML
	if format == "json" {
		render = set.JSON
	}
	b, err := render()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing manifests: %w", err)
	}
	return nil
}

func writeDir(dir string, set *manifests.Set) error {
	files, err := set.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}
	for _, f := range files {
		perm := os.FileMode(0o644)
		if f.Secret {
			perm = 0o600
		}
		if err := writeFile(filepath.Join(dir, f.Name), f.Data, perm); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data to path with mode perm, also when path exists with a wider mode: the mode is set before
// any byte of a Secret is written.
func writeFile(path string, data []byte, perm os.FileMode) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fh.Chmod(perm); err != nil {
		fh.Close()
		return fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
