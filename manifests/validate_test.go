package manifests

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestValidate(t *testing.T) {
	ok := func(o Options) Options {
		if o.Htpasswd == nil && o.Users == nil && !o.ExternalSecrets {
			o.Htpasswd = []byte(fixtureHtpasswd)
		}
		if o.HTTPSecret == nil && !o.ExternalSecrets {
			o.HTTPSecret = []byte("s")
		}
		return o
	}
	tests := []struct {
		name string
		opts Options
		want []string // one line per joined error; nil means valid
	}{
		{name: "defaults with credentials", opts: ok(Options{})},
		{name: "external secrets need nothing", opts: Options{ExternalSecrets: true}},
		{name: "random source for generated credentials", opts: Options{Rand: bytes.NewReader(make([]byte, 64))}},
		{name: "rwx with replicas", opts: ok(Options{AccessMode: corev1.ReadWriteMany, Replicas: 3})},
		{name: "nodeport bounds ok", opts: ok(Options{ServiceType: corev1.ServiceTypeNodePort, NodePort: 32767})},
		{name: "empty storage class disables provisioning", opts: ok(Options{StorageClass: ptr.To("")})},
		{
			name: "rwo refuses replicas",
			opts: ok(Options{Replicas: 2}),
			want: []string{"--replicas 2: a ReadWriteOnce volume attaches to one node, so only one registry pod can use it; " +
				"use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage"},
		},
		{
			name: "rwop refuses replicas",
			opts: ok(Options{Replicas: 2, AccessMode: corev1.ReadWriteOncePod}),
			want: []string{"--replicas 2: a ReadWriteOncePod volume attaches to one node, so only one registry pod can use it; " +
				"use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage"},
		},
		{
			name: "negative replicas",
			opts: ok(Options{Replicas: -1}),
			want: []string{"--replicas -1: must be 1 or more"},
		},
		{
			name: "node port out of range",
			opts: ok(Options{ServiceType: corev1.ServiceTypeNodePort, NodePort: 5000}),
			want: []string{"--node-port 5000: must be in the node port range 30000-32767"},
		},
		{
			name: "node port above range",
			opts: ok(Options{ServiceType: corev1.ServiceTypeLoadBalancer, NodePort: 32768}),
			want: []string{"--node-port 32768: must be in the node port range 30000-32767"},
		},
		{
			name: "node port with cluster ip",
			opts: ok(Options{NodePort: 30500}),
			want: []string{"--node-port 30500: needs --service-type NodePort or LoadBalancer, not ClusterIP"},
		},
		{
			name: "unknown service type",
			opts: ok(Options{ServiceType: "ExternalName"}),
			want: []string{`--service-type "ExternalName": must be ClusterIP, NodePort or LoadBalancer`},
		},
		{
			name: "bad names",
			opts: ok(Options{Namespace: "Docker_Registry", Name: "1registry"}),
			want: []string{
				`--namespace "Docker_Registry": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`--name "1registry": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
			},
		},
		{
			name: "bad image",
			opts: ok(Options{Image: "Registry-Kit:dev"}),
			want: []string{`--image "Registry-Kit:dev": is not a valid image reference: invalid reference format: repository name (library/Registry-Kit) must be lowercase`},
		},
		{
			name: "bad pull policy",
			opts: ok(Options{ImagePullPolicy: "Sometimes"}),
			want: []string{`--image-pull-policy "Sometimes": must be Always, IfNotPresent or Never`},
		},
		{
			name: "read only access mode",
			opts: ok(Options{AccessMode: corev1.ReadOnlyMany}),
			want: []string{`--access-mode "ReadOnlyMany": must be ReadWriteOnce, ReadWriteOncePod or ReadWriteMany (the registry writes to its volume)`},
		},
		{
			name: "storage kind not implemented",
			opts: ok(Options{Storage: "gcs"}),
			want: []string{`--storage "gcs": is not supported (supported: filesystem, s3)`},
		},
		{name: "s3 with replicas", opts: ok(Options{Storage: StorageS3, Replicas: 3, S3: S3{Bucket: "images"}})},
		{name: "s3 with minio and in-cluster redis", opts: ok(Options{Storage: StorageS3, Replicas: 2, Rand: bytes.NewReader(make([]byte, 64)),
			S3:    S3{Bucket: "images", Endpoint: "http://minio.storage:9000", Insecure: true, ForcePathStyle: true},
			Redis: Redis{InCluster: true}})},
		{
			name: "s3 needs a bucket",
			opts: ok(Options{Storage: StorageS3}),
			want: []string{"--s3-bucket: required with storage s3"},
		},
		{
			name: "s3 refuses volume options",
			opts: ok(Options{Storage: StorageS3, S3: S3{Bucket: "images"}, ExistingClaim: "c", StorageClass: ptr.To("x"), StorageSize: resource.MustParse("1Gi")}),
			want: []string{"--existing-claim: only applies with --storage filesystem",
				"--storage-class: only applies with --storage filesystem", "--storage-size: only applies with --storage filesystem"},
		},
		{
			name: "s3 endpoint problems",
			opts: ok(Options{Storage: StorageS3, S3: S3{Bucket: "images", Endpoint: "http://minio:9000", RootDirectory: "registry", AccessKey: []byte("ak")}}),
			want: []string{`--s3-endpoint: "http://minio:9000" is plain http but s3-secure is true; set s3-secure to false for an endpoint without TLS`,
				`--s3-root-directory: "registry" must be an absolute key prefix such as /registry (no empty, . or .. components, no spaces)`,
				"--s3-access-key-file, --s3-secret-key-file: give both or neither"},
		},
		{
			name: "s3 endpoint with path",
			opts: ok(Options{Storage: StorageS3, S3: S3{Bucket: "images", Endpoint: "https://minio:9000/b"}}),
			want: []string{`--s3-endpoint: "https://minio:9000/b" must not have a path or query (the bucket is s3-bucket)`},
		},
		{
			name: "s3 flags on filesystem",
			opts: ok(Options{S3: S3{Bucket: "images"}}),
			want: []string{"--s3-*: only apply with --storage s3"},
		},
		{
			name: "redis twice and bad address",
			opts: ok(Options{Storage: StorageS3, S3: S3{Bucket: "images"}, Redis: Redis{InCluster: true, Addrs: []string{"redis"}, Password: []byte("p")}}),
			want: []string{"--with-redis: cannot be combined with --redis-addr", `--redis-addr: "redis" is not HOST:PORT`},
		},
		{
			name: "redis options without redis",
			opts: ok(Options{Storage: StorageS3, S3: S3{Bucket: "images"}, Redis: Redis{DB: 2}}),
			want: []string{"--redis-db: only applies with redis-addr"},
		},
		{
			name: "negative storage size",
			opts: ok(Options{StorageSize: resource.MustParse("-1Gi")}),
			want: []string{`--storage-size "-1Gi": must be greater than zero`},
		},
		{
			name: "existing claim with size and class",
			opts: ok(Options{ExistingClaim: "data", StorageSize: resource.MustParse("1Gi"), StorageClass: ptr.To("fast")}),
			want: []string{
				"--storage-class: only applies to a claim registry-kit creates, not with --existing-claim",
				"--storage-size: only applies to a claim registry-kit creates, not with --existing-claim",
			},
		},
		{
			name: "bad storage class",
			opts: ok(Options{StorageClass: ptr.To("Fast SSD")}),
			want: []string{`--storage-class "Fast SSD": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
		{
			name: "resources",
			opts: ok(Options{Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), "gpu": resource.MustParse("1")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			}}),
			want: []string{
				"--requests gpu: unknown resource (known: cpu, memory, ephemeral-storage)",
				"--requests memory=1Gi: is more than --limits memory=512Mi",
			},
		},
		{
			name: "labels and annotations",
			opts: ok(Options{
				Labels:      map[string]string{"app.kubernetes.io/name": "x", "team": "a b"},
				Annotations: map[string]string{"registry-kit.dev/config-hash": "x"},
			}),
			want: []string{
				`--label "app.kubernetes.io/name": is set by registry-kit and cannot be overridden`,
				`--label team="a b": value a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
				`--annotation "registry-kit.dev/config-hash": the registry-kit.dev/ prefix is reserved for registry-kit`,
			},
		},
		{
			name: "ingress without host",
			opts: ok(Options{Ingress: &Ingress{TLSSecretName: "Bad"}}),
			want: []string{
				"--ingress-host: is required for an ingress",
				`--ingress-tls-secret "Bad": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
			},
		},
		{
			name: "users",
			opts: ok(Options{Users: []User{
				{Name: "bob:x", Password: "p"},
				{Name: "carol", Password: ""},
				{Name: "dave", Password: strings.Repeat("x", 73)},
				{Name: "dave", Password: "p"},
			}}),
			want: []string{
				`--user 1 "bob:x": user name contains ':'`,
				`--user "carol": password is empty`,
				`--user "dave": password is longer than bcrypt's 72 bytes`,
				`--user "dave": is given more than once`,
			},
		},
		{
			name: "htpasswd content and cost",
			opts: ok(Options{Htpasswd: []byte("alice:{SHA}x\n"), BcryptCost: 3}),
			want: []string{
				"--bcrypt-cost 3: must be between 4 and 31",
				`--htpasswd-file: parsing htpasswd content: line 1: user "alice": password hash uses SHA-1 ({SHA}); only bcrypt is supported (create entries with htpasswd -B)`,
			},
		},
		{
			name: "external secrets with credentials",
			opts: Options{ExternalSecrets: true, HTTPSecret: []byte("s")},
			want: []string{"external secrets: users, an htpasswd file and an HTTP secret cannot be given when the Secrets are provided externally"},
		},
		{
			name: "no random source",
			opts: Options{},
			want: []string{"random source: needed to generate the admin password, HTTP secret or Redis password, but none was given"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() errors (-want +got):\n%s", diff)
			}
			// Generate refuses exactly what Validate refuses, before building anything.
			if _, gerr := Generate(tc.opts); (gerr == nil) != (err == nil) {
				t.Errorf("Generate error = %v, Validate error = %v", gerr, err)
			}
		})
	}
}

// TestErrorsHoldNoSecrets: passwords and hashes never reach an error message.
func TestErrorsHoldNoSecrets(t *testing.T) {
	const pw = "hunter2-secret-password"
	o := Options{
		Users:    []User{{Name: "x:y", Password: pw}, {Name: "long", Password: pw + strings.Repeat("z", 80)}},
		Htpasswd: []byte("alice:$2y$05$notarealhashnotarealhashnotarealhashnotarealhashnota\n"),
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, secret := range []string{pw, "notarealhash"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error message contains a credential (%d bytes of it)", len(secret))
		}
	}
	if s := (User{Name: "u", Password: pw}).String(); strings.Contains(s, pw) {
		t.Error("User.String shows the password")
	}
	if s := (User{Name: "u", Password: pw}).GoString(); strings.Contains(s, pw) {
		t.Error("User.GoString shows the password")
	}
}

func TestGenerateWrapsValidation(t *testing.T) {
	_, err := Generate(Options{Replicas: -1})
	if err == nil || !strings.HasPrefix(err.Error(), "validating options: ") {
		t.Fatalf("got %v, want a validating options error", err)
	}
	if errors.Unwrap(err) == nil {
		t.Error("validation error is not wrapped with %w")
	}
}
