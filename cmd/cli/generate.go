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
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/registry-kit/registry-kit/manifests"
)

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4096

type generateOptions struct {
	manifestFlags
	namespace       string
	createNamespace bool
	serviceType     string
	nodePort        int32
	requests        map[string]string
	limits          map[string]string
	ingressHost     string
	ingressClass    string
	ingressTLS      string
	labels          map[string]string
	annotations     map[string]string
	user            string
	passwordStdin   bool
	bcryptCost      int
	externalSecrets bool
	output          string
	outputDir       string
	helmChart       string
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
			if o.helmChart != "" {
				return writeHelmChart(cmd, streams, o.helmChart)
			}
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
	o.addFlags(f, "existing bcrypt htpasswd file with the registry's users")
	f.StringVar(&o.serviceType, "service-type", string(corev1.ServiceTypeClusterIP), "ClusterIP, NodePort or LoadBalancer")
	f.Int32Var(&o.nodePort, "node-port", 0, "fixed node port, 30000-32767 (0 lets the cluster choose)")
	f.StringToStringVar(&o.requests, "requests", nil, "container resource requests, e.g. cpu=250m,memory=256Mi (with neither --requests nor --limits: cpu=100m,memory=128Mi and a memory=512Mi limit)")
	f.StringToStringVar(&o.limits, "limits", nil, "container resource limits, e.g. memory=512Mi")
	f.StringVar(&o.ingressHost, "ingress-host", "", "add an NGINX Ingress for this host (no body-size limit)")
	f.StringVar(&o.ingressClass, "ingress-class", "", "IngressClass of the Ingress (default: the cluster's default)")
	f.StringVar(&o.ingressTLS, "ingress-tls-secret", "", "kubernetes.io/tls Secret the Ingress terminates TLS with")
	f.StringToStringVar(&o.labels, "label", nil, "extra label on every object, KEY=VALUE (repeatable)")
	f.StringToStringVar(&o.annotations, "annotation", nil, "extra annotation on every object, KEY=VALUE (repeatable)")
	f.StringVar(&o.user, "user", "", "registry user to create; the password is read from standard input (--password-stdin)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the --user password from the first line of standard input")
	f.IntVar(&o.bcryptCost, "bcrypt-cost", manifests.DefaultBcryptCost, "bcrypt cost for --user and a generated admin")
	f.BoolVar(&o.externalSecrets, "external-secrets", false, "leave both Secrets out (they are created another way); the Deployment still mounts them by name")
	f.StringVarP(&o.output, "output", "o", "yaml", "yaml (a ---separated stream) or json (a v1 List)")
	f.StringVar(&o.outputDir, "output-dir", "", "write one file per object plus a kustomization.yaml into this directory instead of standard output")
	f.StringVar(&o.helmChart, "helm-chart", "", "write the Helm chart of these objects into this directory (its values map to this command's flags; takes no other flag)")
	return cmd
}

// toOptions turns the flags (and the files and standard input they point to) into manifests.Options and validates
// them. Every problem is reported at once; nothing has been written when it returns an error.
func (o *generateOptions) toOptions(cmd *cobra.Command, stdin io.Reader) (manifests.Options, error) {
	changed := cmd.Flags().Changed
	m := manifests.Options{
		Namespace:       o.namespace,
		OmitNamespace:   !o.createNamespace,
		ServiceType:     corev1.ServiceType(o.serviceType),
		NodePort:        o.nodePort,
		Labels:          o.labels,
		Annotations:     o.annotations,
		BcryptCost:      o.bcryptCost,
		ExternalSecrets: o.externalSecrets,
		Rand:            rand.Reader,
	}
	errs := o.apply(changed, &m)
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
	errs = append(errs, o.users(&m, stdin)...)
	// Validate what did parse too, so one run reports every problem.
	errs = append(errs, m.Validate())
	return m, errors.Join(errs...)
}

// users reads the --user password into m. Passwords only ever come from standard input, never from a flag
// (flags are visible in ps and shell history); the files credentials come from are read by manifestFlags.apply.
func (o *generateOptions) users(m *manifests.Options, stdin io.Reader) []error {
	switch {
	case o.user != "" && !o.passwordStdin:
		return []error{fmt.Errorf("--user %q: needs --password-stdin (passwords are never taken from flags)", o.user)}
	case o.user == "" && o.passwordStdin:
		return []error{errors.New("--password-stdin: needs --user")}
	case o.user != "":
		pw, err := readStdinPassword(stdin)
		if err != nil {
			return []error{fmt.Errorf("--password-stdin: %w", err)}
		}
		m.Users = []manifests.User{{Name: o.user, Password: pw}}
	}
	return nil
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
	for _, w := range manifests.PlainHTTPWarnings(set.Objects()) {
		fmt.Fprintf(streams.ErrOut, "Warning: %s\n", w)
	}
	if u := set.GeneratedUser; u != nil {
		fmt.Fprintf(streams.ErrOut, "Generated registry user %q with password: %s\n"+
			"It is shown only this once and stored only as a bcrypt hash in Secret %s/%s.\n",
			u.Name, u.Password, set.HtpasswdSecret.Namespace, set.HtpasswdSecret.Name)
	}
	return nil
}

// writeHelmChart writes the chart of this version of registry-kit into dir. The chart's values are the generator's
// options, so no other generate flag applies: they are set at helm install time.
func writeHelmChart(cmd *cobra.Command, streams IOStreams, dir string) error {
	var others []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "helm-chart" {
			others = append(others, "--"+f.Name)
		}
	})
	if len(others) > 0 {
		return fmt.Errorf("--helm-chart: cannot be combined with %s (set the chart's values at helm install; values.yaml names the flag each maps to)", strings.Join(others, ", "))
	}
	files, err := manifests.Chart(version())
	if err != nil {
		return fmt.Errorf("generating the Helm chart: %w", err)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating chart directory: %w", err)
		}
		if err := writeFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(streams.ErrOut, "wrote Helm chart %s %s to %s\n", manifests.ChartName, version(), dir)
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
