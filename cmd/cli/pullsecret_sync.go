package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/registry-kit/registry-kit/deploy/pullsecret/syncer"
)

// defaultSyncLease is the Lease the replicas of `pull-secret sync` elect their leader with.
const defaultSyncLease = "registry-kit-pull-secret-sync"

type pullSecretSyncOptions struct {
	kube *kubeFlags

	source          string
	targetName      string
	nsSelector      string
	include         []string
	exclude         []string
	serviceAccounts string
	saSelector      string
	leaseName       string
	identity        string
	leaseDuration   time.Duration
	renewDeadline   time.Duration
	retryPeriod     time.Duration
	listen          string
	workers         int
	qps             float32
	burst           int
}

func newPullSecretSyncCommand(streams IOStreams) *cobra.Command {
	o := &pullSecretSyncOptions{kube: newKubeFlags()}
	cmd := &cobra.Command{
		Use:   "sync --source NAMESPACE/NAME",
		Short: "Run the controller that keeps a pull Secret in every selected namespace and ServiceAccount",
		Long: `Run a controller that copies one pull Secret (--source) into every selected namespace and adds the copy to
the chosen ServiceAccounts' imagePullSecrets, and keeps it so: a new namespace gets the copy as soon as it exists
and its ServiceAccounts are patched on their creation event (no polling); when the source changes (a rotated
password), every copy is updated within seconds and an Event on each copy says so.

Copies carry the label ` + syncer.CopyLabel + `=` + syncer.CopyLabelValue + `; references the controller added are listed in the
ServiceAccount's ` + syncer.AddedAnnotation + ` annotation. Only those are ever changed or removed (when a
namespace stops matching): a Secret of the same name made by someone else, and other imagePullSecrets, stay.

Pods read imagePullSecrets when they are admitted: a pod created in a new namespace before the controller patched
its ServiceAccount (usually well under a second) has no pull secret; recreate it.

Several replicas are safe: they elect a leader with the coordination.k8s.io Lease --lease-name in the namespace
-n (default $POD_NAMESPACE, else the source's namespace); the others stand by with warm caches. /healthz and
Prometheus /metrics are served on --listen.`,
		Example: `  registry-kit pull-secret sync --source docker-registry/registry-kit-pull --target-name regcred
  registry-kit pull-secret sync --source docker-registry/registry-kit-pull --namespace-selector pull-secrets=registry-kit --service-accounts all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ropts, err := o.toConfig(cmd)
			if err != nil {
				return err
			}
			restCfg, err := o.kube.restConfig()
			if err != nil {
				return err
			}
			// client-go's default of 5 requests/s would queue a burst of new namespaces behind each other.
			restCfg.QPS, restCfg.Burst = o.qps, o.burst
			client, err := kubernetes.NewForConfig(restCfg)
			if err != nil {
				return fmt.Errorf("creating Kubernetes client for %s: %w", restCfg.Host, err)
			}
			ropts.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			if o.listen != "" {
				l, err := net.Listen("tcp", o.listen)
				if err != nil {
					return fmt.Errorf("--listen %q: %w", o.listen, err)
				}
				ropts.Listener = l
			}
			return syncer.Run(cmd.Context(), client, cfg, ropts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "the Secret to copy, NAMESPACE/NAME (type kubernetes.io/dockerconfigjson)")
	f.StringVar(&o.targetName, "target-name", "", "name of the copies (default: the source's name)")
	f.StringVar(&o.nsSelector, "namespace-selector", "", "label selector namespaces must match, e.g. pull-secrets=registry-kit (default: every namespace)")
	f.StringSliceVar(&o.include, "include-namespace", nil, "only namespaces whose name matches one of these patterns (* ? [a-z]; default: any)")
	f.StringSliceVar(&o.exclude, "exclude-namespace", syncer.DefaultExcludePatterns, "never namespaces whose name matches one of these patterns")
	f.StringVar(&o.serviceAccounts, "service-accounts", "default", `ServiceAccounts to patch: "default", "all", "none", or a comma-separated list of names`)
	f.StringVar(&o.saSelector, "service-account-selector", "", "patch the ServiceAccounts whose labels match this selector instead")
	f.StringVar(&o.leaseName, "lease-name", defaultSyncLease, "the coordination.k8s.io Lease the replicas elect a leader with")
	f.StringVar(&o.identity, "identity", "", "this replica's name in the Lease (default $POD_NAME, else hostname and a random suffix)")
	f.DurationVar(&o.leaseDuration, "lease-duration", syncer.DefaultLeaseDuration, "how long a standby waits after the leader's last renewal before taking over")
	f.DurationVar(&o.renewDeadline, "renew-deadline", syncer.DefaultRenewDeadline, "how long the leader keeps trying to renew before it gives up (and exits)")
	f.DurationVar(&o.retryPeriod, "retry-period", syncer.DefaultRetryPeriod, "how often replicas try to acquire or renew the Lease")
	f.StringVar(&o.listen, "listen", ":8080", `address for /healthz and /metrics ("" for none)`)
	f.IntVar(&o.workers, "workers", 4, "namespaces reconciled in parallel")
	f.Float32Var(&o.qps, "kube-api-qps", 50, "requests per second to the API server (client-side limit)")
	f.IntVar(&o.burst, "kube-api-burst", 100, "requests allowed in a burst above --kube-api-qps")
	o.kube.addFlags(f)
	f.Lookup("namespace").Usage = "namespace of the leader Lease (default $POD_NAMESPACE, else the source's namespace)"
	return cmd
}

// toConfig validates every flag and reports every problem at once.
func (o *pullSecretSyncOptions) toConfig(cmd *cobra.Command) (syncer.Config, syncer.RunOptions, error) {
	var errs []error
	cfg := syncer.Config{TargetName: o.targetName}
	if o.source == "" {
		errs = append(errs, errors.New("--source: required (NAMESPACE/NAME of the pull Secret to copy)"))
	} else if src, err := syncer.ParseSource(o.source); err != nil {
		errs = append(errs, fmt.Errorf("--source: %w", err))
	} else {
		cfg.Source = src
	}
	if o.nsSelector != "" {
		sel, err := labels.Parse(o.nsSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("--namespace-selector %q: %w", o.nsSelector, err))
		}
		cfg.Namespaces.Labels = sel
	}
	cfg.Namespaces.Include, cfg.Namespaces.Exclude = o.include, o.exclude
	sa, err := parseServiceAccounts(o.serviceAccounts, o.saSelector, cmd.Flags().Changed("service-accounts"))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.ServiceAccounts = sa
	if o.qps <= 0 || o.burst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %g, --kube-api-burst %d: must be positive", o.qps, o.burst))
	}
	if o.workers <= 0 {
		errs = append(errs, fmt.Errorf("--workers %d: must be positive", o.workers))
	}
	if o.leaseDuration <= o.renewDeadline || o.renewDeadline <= o.retryPeriod || o.retryPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--lease-duration %s, --renew-deadline %s, --retry-period %s: want lease-duration > renew-deadline > retry-period > 0",
			o.leaseDuration, o.renewDeadline, o.retryPeriod))
	}
	if cfg.Source.Name != "" {
		errs = append(errs, cfg.Validate())
	}
	leaseNS := o.kube.namespaceFlag()
	if leaseNS == "" {
		leaseNS = os.Getenv("POD_NAMESPACE")
	}
	if leaseNS == "" {
		leaseNS = cfg.Source.Namespace
	}
	identity := o.identity
	if identity == "" {
		identity = os.Getenv("POD_NAME")
	}
	ropts := syncer.RunOptions{
		Options:        syncer.Options{Workers: o.workers},
		LeaseNamespace: leaseNS, LeaseName: o.leaseName, Identity: identity,
		LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod,
	}
	return cfg, ropts, errors.Join(errs...)
}

// parseServiceAccounts reads --service-accounts and --service-account-selector.
func parseServiceAccounts(list, selector string, listChanged bool) (syncer.ServiceAccountSelector, error) {
	if selector != "" && listChanged {
		return syncer.ServiceAccountSelector{}, errors.New("--service-accounts and --service-account-selector: give one, not both")
	}
	return syncer.ParseServiceAccounts(list, selector)
}
