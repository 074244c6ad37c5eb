package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/deploy"
	"github.com/registry-kit/registry-kit/manifests"
)

// deployDefaultNodePort is the node port deploy asks for, so the image prefix pods use is stable: localhost:30500.
const deployDefaultNodePort = 30500

type deployOptions struct {
	kube *kubeFlags

	manifestFlags
	kustomizeDir   string
	serviceType    string
	nodePort       int32
	rotatePassword bool
	rotatePuller   bool

	forceConflicts bool
	dryRun         string
	output         string
	wait           bool
	timeout        time.Duration
	address        string
	pullAddress    string
	printRBAC      bool
	pullSync       pullSyncFlags
	serviceAccount serviceAccountAuthFlags
	pullSecretNS   []string
	pullSecretName string
	nodes          deployNodeFlags
}

func newDeployCommand(streams IOStreams) *cobra.Command {
	return deployCommand(streams, &deployOptions{kube: newKubeFlags()})
}

// deployCommand binds the deploy command's flags to o.
func deployCommand(streams IOStreams, o *deployOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy registry-kit to the current cluster and wait until it serves",
		Long: `Deploy registry-kit to the cluster of the current kubeconfig context with server-side apply (field manager
"registry-kit"), then wait until the Deployment is available and the registry answers /v2/ through the node port.

By default the Service is a NodePort on 30500 and pods use the image prefix localhost:30500/: the node's container
runtime pulls through the node port on its own loopback, where containerd and CRI-O use plain HTTP without any
configuration. Running deploy again changes nothing and keeps the admin password (--rotate-password makes a new one).
Clusters without a dynamic volume provisioner need a PersistentVolume for the claim (or --existing-claim).
With --storage s3 there is no claim: several replicas share the bucket, a PodDisruptionBudget and (with
--with-redis) an in-cluster Redis cache whose password, like the HTTP secret, is kept across deploys.

The registry goes to namespace docker-registry unless -n says otherwise. deploy creates the namespace only when it
does not exist, with the Pod Security label enforce=restricted and the annotation registry-kit.dev/created-by (the
only namespaces undeploy deletes); an existing namespace (default included) is left exactly as it is, with a warning
naming the label to set by hand. With -k DIR the objects come from a kustomize overlay (see manifests/overlays)
instead of the generator; its Namespace object is treated the same way.`,
		Example: `  registry-kit deploy
  registry-kit deploy --storage-class standard --storage-size 50Gi
  registry-kit deploy -k manifests/overlays/dev
  registry-kit deploy --storage s3 --replicas 2 --s3-endpoint http://minio.storage.svc:9000 --s3-secure=false \
      --s3-force-path-style --s3-bucket registry --s3-access-key-file ak --s3-secret-key-file sk --with-redis
  registry-kit deploy --dry-run=server -o yaml
  registry-kit deploy --print-rbac -n shop | kubectl apply -f -
  registry-kit deploy --print-rbac --sync-pull-secrets -n shop    # with what the pull-secret controller needs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.printRBAC {
				var extra []deploy.RBACOption
				if cmd.Flags().Changed("sync-pull-secrets") {
					extra = append(extra, deploy.WithPullSync())
				}
				rbac, err := deploy.RBACFor(deployNamespace(o.kube), extra...)
				if err != nil {
					return err
				}
				_, err = streams.Out.Write(rbac)
				return err
			}
			dopts, err := o.toOptions(cmd, streams)
			if err != nil {
				return err
			}
			clients, err := deployClients(o.kube)
			if err != nil {
				return err
			}
			res, err := deploy.Deploy(cmd.Context(), clients, dopts)
			return o.report(streams, dopts, res, err)
		},
	}
	f := cmd.Flags()
	o.kube.addFlags(f)
	f.StringVarP(&o.kustomizeDir, "kustomize", "k", "", "deploy this kustomize directory (base or overlay) instead of generating the objects")
	o.addFlags(f, "bcrypt htpasswd file with the registry's users (default: keep the deployed one, or generate user admin)")
	f.StringVar(&o.serviceType, "service-type", string(corev1.ServiceTypeNodePort), "NodePort (reachable by the nodes), LoadBalancer or ClusterIP")
	f.Int32Var(&o.nodePort, "node-port", deployDefaultNodePort, "fixed node port (0 lets the cluster choose)")
	f.BoolVar(&o.rotatePassword, "rotate-password", false, "replace the htpasswd Secret with a new random admin password (printed once)")
	f.BoolVar(&o.rotatePuller, "rotate-puller-password", false, "give the pull-only user "+manifests.PullerUser+" a new random password (the pull Secrets deploy writes, and the controller's copies, follow)")
	f.BoolVar(&o.forceConflicts, "force-conflicts", false, "take over fields another field manager owns (after hand edits)")
	f.StringVar(&o.dryRun, "dry-run", "none", "none, client (show what would be applied) or server (let the API server check it, persisting nothing)")
	f.StringVarP(&o.output, "output", "o", "", "print the applied (or would-be applied) objects: yaml")
	f.BoolVar(&o.wait, "wait", true, "wait until the registry serves")
	f.DurationVar(&o.timeout, "timeout", deploy.DefaultTimeout, "how long to wait until the registry serves")
	f.StringVar(&o.address, "address", "", "HOST:PORT the registry is reachable at from this machine (default: the node port on 127.0.0.1, then on the nodes' IPs)")
	f.StringVar(&o.pullAddress, "pull-address", "", "HOST:PORT pods put in front of image names (default localhost:<node-port>, pulled through each node's loopback)")
	f.StringSliceVar(&o.pullSecretNS, "pull-secret-namespaces", nil,
		"create a pull Secret with the pull-only user "+manifests.PullerUser+" in these namespaces (comma-separated) once the registry serves")
	f.StringVar(&o.pullSecretName, "pull-secret-name", deploy.DefaultPullSecretName, "name of the pull Secrets --pull-secret-namespaces creates and --sync-pull-secrets copies to namespaces")
	f.BoolVar(&o.printRBAC, "print-rbac", false, "print the Role (in the namespace -n names) and ClusterRole deploy and undeploy need, with how to bind them, and exit")
	o.pullSync.addFlags(f)
	o.serviceAccount.addFlags(f)
	o.nodes.addFlags(cmd)
	return cmd
}

// toOptions validates the flags and turns them into deploy.Options. Every problem is reported at once.
func (o *deployOptions) toOptions(cmd *cobra.Command, streams IOStreams) (deploy.Options, error) {
	var errs []error
	dryRun, err := deploy.ParseDryRun(o.dryRun)
	if err != nil {
		errs = append(errs, err)
	}
	if o.output != "" && o.output != "yaml" {
		errs = append(errs, fmt.Errorf("--output %q: only yaml is supported", o.output))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", o.timeout))
	}
	for flag, v := range map[string]string{"--address": o.address, "--pull-address": o.pullAddress} {
		if v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("%s %q: want HOST:PORT", flag, v))
		}
	}
	pullSync, err := o.pullSync.toPullSync(cmd.Flags().Changed, o.pullSecretName)
	if err != nil {
		errs = append(errs, err)
	}
	saAuth, err := o.serviceAccount.toOptions(cmd.Flags().Changed)
	if err != nil {
		errs = append(errs, err)
	}
	nodes, err := o.nodes.toOptions()
	if err != nil {
		errs = append(errs, err)
	}
	progress := streams.ErrOut
	if o.output == "" {
		progress = streams.Out
	}
	dopts := deploy.Options{
		Namespace:      deployNamespace(o.kube),
		ForceConflicts: o.forceConflicts,
		DryRun:         dryRun,
		NoWait:         !o.wait,
		Timeout:        o.timeout,
		Address:        o.address,
		PullAddress:    o.pullAddress,
		PullSync:       pullSync,
		Nodes:          nodes,
		Canary:         o.nodes.canary,
		Progress:       progress,

		ServiceAccountAuth: saAuth,

		PullSecretNamespaces: o.pullSecretNS,
		PullSecretName:       o.pullSecretName,
	}
	if o.kustomizeDir != "" {
		for _, name := range append(o.names, "service-type", "node-port", "rotate-password", "rotate-puller-password") {
			if cmd.Flags().Changed(name) {
				errs = append(errs, fmt.Errorf("--%s: cannot be combined with -k (the overlay says what to deploy)", name))
			}
		}
		if fi, err := os.Stat(o.kustomizeDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("-k %q: not a directory", o.kustomizeDir))
		}
		dopts.Source = deploy.Source{KustomizeDir: o.kustomizeDir}
		return dopts, errors.Join(errs...)
	}
	mopts, merrs := o.manifestOptions(cmd)
	errs = append(errs, merrs...)
	// Validate what did parse too, so one run reports every problem.
	errs = append(errs, mopts.Validate())
	dopts.Source = deploy.Source{Generate: &mopts, RotatePassword: o.rotatePassword, RotatePullerPassword: o.rotatePuller}
	return dopts, errors.Join(errs...)
}

func (o *deployOptions) manifestOptions(cmd *cobra.Command) (manifests.Options, []error) {
	m := manifests.Options{
		Namespace:   deployNamespace(o.kube),
		ServiceType: corev1.ServiceType(o.serviceType),
		Rand:        rand.Reader,
	}
	errs := o.apply(cmd.Flags().Changed, &m)
	if m.ServiceType != corev1.ServiceTypeClusterIP {
		m.NodePort = o.nodePort
	} else if cmd.Flags().Changed("node-port") {
		errs = append(errs, fmt.Errorf("--node-port %d: needs --service-type NodePort or LoadBalancer", o.nodePort))
	}
	return m, errs
}

// report prints what deploy did: the objects (-o yaml), the generated password (once), and how to use the registry.
func (o *deployOptions) report(streams IOStreams, dopts deploy.Options, res *deploy.Result, err error) error {
	if res == nil {
		return err
	}
	if o.output == "yaml" {
		if yerr := writeObjectsYAML(streams.Out, res.Applied); yerr != nil && err == nil {
			err = yerr
		}
	}
	user, password := "", ""
	if res.GeneratedUser != nil && dopts.DryRun == deploy.DryRunNone && htpasswdApplied(res) {
		user, password = res.GeneratedUser.Name, res.GeneratedUser.Password
	}
	info := streams.Out
	if o.output != "" {
		info = streams.ErrOut
	}
	if err != nil {
		deploy.WriteWarnings(streams.ErrOut, res.Warnings)
		if password != "" {
			fmt.Fprintf(streams.ErrOut, "The htpasswd Secret was applied with a generated user %q, password %s (shown once).\n", user, password)
		}
		return err
	}
	if dopts.DryRun != deploy.DryRunNone {
		deploy.WriteWarnings(info, res.Warnings)
		return nil
	}
	if dopts.NoWait {
		deploy.WriteWarnings(info, res.Warnings)
		if password != "" {
			deploy.WriteCredentials(info, user, password)
		}
		return nil
	}
	deploy.Instructions{Result: res, User: user, Password: password}.Write(info)
	o.serviceAccount.writeSteps(info, dopts, res)
	return nil
}

func htpasswdApplied(res *deploy.Result) bool {
	for _, a := range res.Applied {
		if a.Object.GetKind() == "Secret" && strings.HasSuffix(a.Object.GetName(), "-htpasswd") && a.Action != deploy.Unchanged {
			return true
		}
	}
	return false
}

func writeObjectsYAML(w io.Writer, applied []deploy.Applied) error {
	for i, a := range applied {
		u := a.Object.DeepCopy()
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("encoding %s as YAML: %w", a.Ref(), err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// deployClients builds the dynamic client, REST mapper and clientset deploy and undeploy need from kubectl's
// flags, failing early with a clear message when the cluster cannot be reached.
func deployClients(k *kubeFlags) (deploy.Clients, error) {
	// Like kubectl, cli-runtime falls back to http://localhost:8080 when there is no kubeconfig at all; say so
	// instead of reporting a refused connection to a server the user never named.
	// (Inside a pod, the in-cluster configuration applies instead.)
	if raw, err := k.config.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Clusters) == 0 && !inCluster() {
		return deploy.Clients{}, errors.New("no kubeconfig found: set --kubeconfig or KUBECONFIG, or create ~/.kube/config")
	}
	cfg, err := k.restConfig()
	if err != nil {
		return deploy.Clients{}, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return deploy.Clients{}, fmt.Errorf("creating Kubernetes client for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return deploy.Clients{}, fmt.Errorf("creating dynamic client for %s: %w", cfg.Host, err)
	}
	if _, err := kube.Discovery().ServerVersion(); err != nil {
		return deploy.Clients{}, fmt.Errorf("contacting the cluster at %s: %w", cfg.Host, deploy.Explain(err))
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	return deploy.Clients{Dynamic: dyn, Mapper: mapper, Kube: kube}, nil
}

// deployNamespace is -n, or the registry's default namespace: never the kubeconfig context's namespace, which
// is where the user's apps live.
func deployNamespace(k *kubeFlags) string {
	if ns := k.namespaceFlag(); ns != "" {
		return ns
	}
	return manifests.DefaultNamespace
}

func inCluster() bool {
	_, err := rest.InClusterConfig()
	return err == nil
}
