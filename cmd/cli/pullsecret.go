package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/deploy/pullsecret"
	"github.com/registry-kit/registry-kit/manifests"
)

// fromDockerConfigDefault is the --from-docker-config value when the flag is given without a path.
const fromDockerConfigDefault = "(docker default)"

type pullSecretCreateOptions struct {
	streams IOStreams
	kube    *kubeFlags

	name             string
	servers          []string
	username         string
	password         string
	passwordStdin    bool
	email            string
	fromDockerConfig string
	allNamespaces    bool
	excludeNS        []string
	serviceAccount   string
	overwrite        bool
	output           string
	checkPush        bool
}

func newPullSecretCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pull-secret",
		Short: "Create image pull Secrets (kubernetes.io/dockerconfigjson), wire them into ServiceAccounts, and keep them in sync",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPullSecretCreateCommand(streams), newPullSecretSyncCommand(streams))
	return cmd
}

func newPullSecretCreateCommand(streams IOStreams) *cobra.Command {
	o := &pullSecretCreateOptions{streams: streams, kube: newKubeFlags()}
	cmd := &cobra.Command{
		Use:   "create NAME (--server HOST[:PORT] --username U --password-stdin | --from-docker-config[=PATH] --server HOST[:PORT]...)",
		Short: "Create a pull Secret in one or more namespaces",
		Long: `Create a Secret of type kubernetes.io/dockerconfigjson, with exactly the content
'kubectl create secret docker-registry' writes, in every namespace where pods need it, and add it to a
ServiceAccount's imagePullSecrets so pods that name no pull secret use it.

Credentials come from flags (the password on stdin), or from a docker config.json: unlike kubectl's
--from-file, credsStore and credHelpers are resolved by running the docker-credential-<helper> programs.

The server is stored the way the kubelet matches it: host[:port] exactly as images name it (a scheme and
/v2/ are dropped); Docker Hub in any spelling is stored as https://index.docker.io/v1/.

Pods read pull secrets only when they are created: recreate existing pods to use the Secret.`,
		Example: `  # one namespace, password from stdin
  echo "$PASS" | registry-kit pull-secret create regcred --server 127.0.0.1:5000 --username ci --password-stdin -n apps

  # from your docker login (helpers resolved), into three namespaces and their default ServiceAccounts
  registry-kit pull-secret create regcred --from-docker-config --server registry.example.com:5000 -n a,b,c

  # every namespace except kube-system, kube-public, kube-node-lease
  registry-kit pull-secret create regcred --from-docker-config --server registry.example.com --all-namespaces

  # a manifest for GitOps, cluster untouched
  echo "$PASS" | registry-kit pull-secret create regcred --server 127.0.0.1:5000 --username ci --password-stdin -n apps -o yaml`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(cmd, args); err != nil {
				return err
			}
			if err := o.validate(cmd); err != nil {
				return err
			}
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.servers, "server", nil, "registry host[:port] as images name it (repeatable with --from-docker-config; docker.io for Docker Hub)")
	f.StringVar(&o.username, "username", "", "registry username")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from stdin")
	f.StringVar(&o.password, "password", "", "registry password (lands in shell history and ps output: prefer --password-stdin)")
	f.StringVar(&o.email, "email", "", "optional email stored with the credentials")
	f.StringVar(&o.fromDockerConfig, "from-docker-config", "", "take the credentials for --server from a docker config.json (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	f.Lookup("from-docker-config").NoOptDefVal = fromDockerConfigDefault
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "create the Secret in every namespace except --exclude-namespace")
	f.StringSliceVar(&o.excludeNS, "exclude-namespace", pullsecret.DefaultExcludedNamespaces, "namespaces --all-namespaces skips")
	f.StringVar(&o.serviceAccount, "service-account", "default", `add the Secret to this ServiceAccount's imagePullSecrets in each namespace ("" for none)`)
	f.BoolVar(&o.overwrite, "overwrite", false, "replace an existing pull Secret of the same name")
	f.StringVarP(&o.output, "output", "o", "", "print the Secret as yaml or json instead of creating it (the cluster is not contacted)")
	f.BoolVar(&o.checkPush, "check-push", true, "warn when the credentials can push: start an upload at the registry and cancel it (writes nothing)")
	o.kube.addFlags(f)
	f.Lookup("namespace").Usage = "target namespace(s), comma-separated (default: the kubeconfig context's namespace)"
	return cmd
}

func (o *pullSecretCreateOptions) complete(cmd *cobra.Command, args []string) error {
	o.name = args[0]
	if len(args) == 2 {
		// "--from-docker-config PATH" (without '=') leaves PATH as a positional argument.
		if o.fromDockerConfig != fromDockerConfigDefault {
			return fmt.Errorf("unexpected argument %q (only NAME is positional)", args[1])
		}
		o.fromDockerConfig = args[1]
	}
	if o.fromDockerConfig == fromDockerConfigDefault {
		dir := os.Getenv("DOCKER_CONFIG")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("finding the docker config: %w", err)
			}
			dir = filepath.Join(home, ".docker")
		}
		o.fromDockerConfig = filepath.Join(dir, "config.json")
	}
	if cmd.Flags().Changed("password") {
		fmt.Fprintln(o.streams.ErrOut, "Warning: --password is visible in shell history and the process list; use --password-stdin.")
	}
	if o.passwordStdin {
		pw, err := readPullSecretPassword(o.streams.In)
		if err != nil {
			return err
		}
		o.password = pw
	}
	return nil
}

func readPullSecretPassword(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("--password-stdin: stdin held no password")
	}
	return pw, nil
}

func (o *pullSecretCreateOptions) validate(cmd *cobra.Command) error {
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(o.name) {
		errs = append(errs, fmt.Errorf("secret name %q: %s", o.name, msg))
	}
	if len(o.servers) == 0 {
		errs = append(errs, errors.New("--server is required (the registry host[:port] images use; docker.io for Docker Hub)"))
	}
	if o.fromDockerConfig != "" {
		if o.username != "" || o.password != "" || o.passwordStdin {
			errs = append(errs, errors.New("--from-docker-config takes the credentials from the file: drop --username/--password/--password-stdin"))
		}
	} else {
		if o.username == "" {
			errs = append(errs, errors.New("--username is required (or use --from-docker-config)"))
		}
		if cmd.Flags().Changed("password") && o.passwordStdin {
			errs = append(errs, errors.New("give --password-stdin or --password, not both"))
		} else if o.password == "" {
			errs = append(errs, errors.New("no password: pipe it to --password-stdin"))
		}
		if len(o.servers) > 1 {
			errs = append(errs, errors.New("one --server with --username (several only with --from-docker-config)"))
		}
	}
	if o.output != "" && o.output != "yaml" && o.output != "json" {
		errs = append(errs, fmt.Errorf("--output %q: want yaml or json", o.output))
	}
	if o.output != "" && o.allNamespaces {
		errs = append(errs, errors.New("--output with --all-namespaces: listing namespaces needs the cluster; name them with -n"))
	}
	if o.allNamespaces && o.kube.namespaceFlag() != "" {
		errs = append(errs, errors.New("give -n or --all-namespaces, not both"))
	}
	return errors.Join(errs...)
}

func (o *pullSecretCreateOptions) run(cmd *cobra.Command) error {
	payload, entries, notes, err := o.payload(cmd.Context())
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(o.streams.ErrOut, "note:", n)
	}
	if o.checkPush {
		o.warnIfCanPush(cmd.Context(), entries)
	}
	namespaces := splitList(o.kube.namespaceFlag())
	if o.output != "" {
		return o.print(payload, namespaces)
	}
	if !o.allNamespaces && len(namespaces) == 0 {
		ns, err := o.kube.namespace()
		if err != nil {
			return err
		}
		namespaces = []string{ns}
	}
	client, err := o.kube.client()
	if err != nil {
		return err
	}
	results, err := pullsecret.Apply(cmd.Context(), client, pullsecret.Options{
		Name:              o.name,
		DockerConfigJSON:  payload,
		Namespaces:        namespaces,
		AllNamespaces:     o.allNamespaces,
		ExcludeNamespaces: o.excludeNS,
		ServiceAccount:    o.serviceAccount,
		Overwrite:         o.overwrite,
	})
	for _, r := range results {
		line := fmt.Sprintf("secret/%s %s in namespace %s", o.name, r.Secret, r.Namespace)
		if r.ServiceAccount != pullsecret.Skipped {
			line += fmt.Sprintf("; serviceaccount/%s %s", o.serviceAccount, r.ServiceAccount)
		}
		fmt.Fprintln(o.streams.Out, line)
	}
	if err != nil {
		return fmt.Errorf("creating pull secret %q: %w", o.name, err)
	}
	fmt.Fprintln(o.streams.Out, "Pods read pull secrets when they are created: recreate existing pods (for example kubectl rollout restart deployment -n NAMESPACE) to use it.")
	return nil
}

// payload builds the .dockerconfigjson from flags or from the docker config, with notes on server names.
func (o *pullSecretCreateOptions) payload(ctx context.Context) ([]byte, []dockerconfig.Entry, []string, error) {
	var cfg *dockerconfig.Config
	if o.fromDockerConfig != "" {
		data, err := os.ReadFile(o.fromDockerConfig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading docker config: %w", err)
		}
		if cfg, err = dockerconfig.Parse(data); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", o.fromDockerConfig, err)
		}
	}
	var entries []dockerconfig.Entry
	var notes []string
	var errs []error
	for _, s := range o.servers {
		key, n, err := dockerconfig.NormalizeServer(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--server: %w", err))
			continue
		}
		notes = append(notes, n...)
		e := dockerconfig.Entry{Server: key, Username: o.username, Password: o.password, Email: o.email}
		if cfg != nil {
			cred, err := cfg.LookupContext(ctx, key)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.fromDockerConfig, err))
				continue
			}
			e.Username, e.Password, e.Email = cred.Username, cred.Password, cred.Email
		}
		entries = append(entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	payload, err := dockerconfig.Build(entries...)
	return payload, entries, notes, err
}

// warnIfCanPush tells the user when the credentials about to be spread to namespaces could push: anyone who can
// read the Secret could then replace images.
func (o *pullSecretCreateOptions) warnIfCanPush(ctx context.Context, entries []dockerconfig.Entry) {
	for _, e := range entries {
		if e.Server == dockerconfig.DockerHubKey || e.Password == "" {
			continue
		}
		can, err := pullsecret.CanPush(ctx, e.Server, e.Username, e.Password, nil)
		switch {
		case err != nil:
			fmt.Fprintf(o.streams.ErrOut, "note: could not check whether user %q can push to %s (--check-push): %s\n",
				e.Username, e.Server, strings.ReplaceAll(err.Error(), e.Password, "<redacted>"))
		case can:
			fmt.Fprintf(o.streams.ErrOut, "Warning: user %q can push to %s (a test upload was accepted, then cancelled): anyone who "+
				"can read this Secret can push and overwrite images. Pull secrets want a pull-only user: the %q user "+
				"registry-kit deploy creates, or one made with registry-kit htpasswd add --role pull.\n", e.Username, e.Server, manifests.PullerUser)
		}
	}
}

func (o *pullSecretCreateOptions) print(payload []byte, namespaces []string) error {
	if len(namespaces) == 0 {
		namespaces = []string{""} // no -n: the manifest takes its namespace where it is applied
	}
	var docs []any
	for _, ns := range namespaces {
		docs = append(docs, pullsecret.Secret(o.name, ns, payload))
	}
	if o.output == "json" {
		var v any = docs[0]
		if len(docs) > 1 {
			list := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
			for _, ns := range namespaces {
				list.Items = append(list.Items, runtimeRaw(pullsecret.Secret(o.name, ns, payload)))
			}
			v = list
		}
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return fmt.Errorf("encoding secret: %w", err)
		}
		_, err = fmt.Fprintln(o.streams.Out, string(b))
		return err
	}
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return fmt.Errorf("encoding secret: %w", err)
		}
		if i > 0 {
			fmt.Fprintln(o.streams.Out, "---")
		}
		if _, err := o.streams.Out.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runtimeRaw(s *corev1.Secret) runtime.RawExtension {
	b, _ := json.Marshal(s) // a Secret always encodes
	return runtime.RawExtension{Raw: b}
}
