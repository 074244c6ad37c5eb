package cli

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/deploy/doctor"
)

// errProblemsFound makes the command exit non-zero after printing a report that names a problem.
var errProblemsFound = errors.New("doctor found problems")

type doctorOptions struct {
	kube     *kubeFlags
	output   string
	insecure []string
	caFile   string
	timeout  time.Duration
	offline  bool
	// saAudience is --service-account-audience: pods pull with their ServiceAccount token.
	saAudience string
	nodes      bool
	name       string
}

func newDoctorCommand(streams IOStreams) *cobra.Command {
	o := &doctorOptions{kube: newKubeFlags()}
	cmd := &cobra.Command{
		Use:   "doctor [POD | pod/POD | deployment/NAME]",
		Short: "Tell why a pod cannot pull its image (ImagePullBackOff) and how to fix it",
		Long: `Inspect a pod (or the pods of a Deployment, or every pod of the namespace that fails to pull), its events, its
ServiceAccount, the pull Secrets it references and the registry itself, and print each check with the command that
fixes what failed. Registry checks run live from this machine with the Secret's credentials (Basic or Bearer-token
auth); plain HTTP is allowed only for loopback registries and those given with --insecure-registry, as on a node
whose containerd has no hosts.toml for them. Secret contents are never printed.

Exit status: 0 when every check passed, 1 when a problem was found (the report names it), 2 when doctor could not
run (bad flags, no cluster, the pod does not exist, RBAC refused a read doctor cannot do without, ...).`,
		Example: `  registry-kit doctor web-7d9c6b5f4-x2x9q -n shop
  registry-kit doctor deployment/web -n shop
  registry-kit doctor -n shop -o json
  registry-kit doctor web -n shop --insecure-registry registry.lan:5000`,
		Args: func(cmd *cobra.Command, args []string) error {
			return withExitCode(ExitCannotRun, cobra.MaximumNArgs(1)(cmd, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			run := o.run
			if o.nodes {
				run = func(cmd *cobra.Command, streams IOStreams, _ string) (error, error) {
					return runDoctorNodes(cmd, streams, o.kube, o.name)
				}
			}
			problems, err := run(cmd, streams, arg)
			if err != nil {
				return withExitCode(ExitCannotRun, err)
			}
			return withExitCode(ExitProblems, problems)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExitCode(ExitCannotRun, err) })
	o.kube.addFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringSliceVar(&o.insecure, "insecure-registry", nil, "registry host[:port] that may be reached over plain HTTP (repeatable)")
	cmd.Flags().StringVar(&o.caFile, "ca-file", "", "PEM file of CA certificates to trust for registries (default: the system pool)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each registry request")
	cmd.Flags().BoolVar(&o.offline, "offline", false, "do not contact registries: use only the cluster's objects and events")
	cmd.Flags().StringVar(&o.saAudience, "service-account-audience", "", "pods pull with their own ServiceAccount token for this audience (registry-kit serve --service-account-audience): check that path for pods without a pull secret")
	cmd.Flags().BoolVar(&o.nodes, "nodes", false, "instead: make every node pull from the registry deploy put in -n NAMESPACE once, and report per node")
	cmd.Flags().StringVar(&o.name, "name", "registry", "with --nodes: name of the deployed registry")
	return cmd
}

// Validate checks the flags, naming the one that is wrong.
func (o *doctorOptions) Validate() error {
	var errs []error
	if o.output != "text" && o.output != "json" {
		errs = append(errs, fmt.Errorf("--output %q: must be text or json", o.output))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s: must be positive", o.timeout))
	}
	for _, h := range o.insecure {
		if h == "" || strings.Contains(h, "/") {
			errs = append(errs, fmt.Errorf("--insecure-registry %q: want host or host:port, without scheme or path", h))
		}
	}
	return errors.Join(errs...)
}

func (o *doctorOptions) libraryOptions() (doctor.Options, error) {
	opts := doctor.Options{InsecureRegistries: o.insecure, Timeout: o.timeout, Offline: o.offline, ServiceAccountAudience: o.saAudience}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return opts, fmt.Errorf("reading --ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("--ca-file %q: no PEM certificate in it", o.caFile)
		}
		opts.RootCAs = pool
	}
	return opts, nil
}

// run diagnoses and prints the report. problems is non-nil when the report names a problem; err when doctor could
// not run at all.
func (o *doctorOptions) run(cmd *cobra.Command, streams IOStreams, arg string) (problems, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	opts, err := o.libraryOptions()
	if err != nil {
		return nil, err
	}
	ns, err := o.kube.namespace()
	if err != nil {
		return nil, err
	}
	target, err := doctor.ParseTarget(arg, ns)
	if err != nil {
		return nil, err
	}
	cs, err := o.kube.client()
	if err != nil {
		return nil, err
	}
	rep, err := doctor.Run(cmd.Context(), cs, target, opts)
	if err != nil {
		return nil, err
	}
	if o.output == "json" {
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = doctor.WriteText(streams.Out, rep)
	}
	if err != nil {
		return nil, fmt.Errorf("writing the report: %w", err)
	}
	if !rep.Problems() {
		return nil, nil
	}
	causes := make([]string, 0)
	for _, c := range rep.Causes() {
		causes = append(causes, string(c))
	}
	if len(causes) == 0 {
		return errProblemsFound, nil
	}
	return fmt.Errorf("%w: %s", errProblemsFound, strings.Join(causes, ", ")), nil
}
