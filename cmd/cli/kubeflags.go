package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags are kubectl's --kubeconfig, --context and -n/--namespace (through cli-runtime's ConfigFlags, so
// they resolve exactly as kubectl's do), for every command that talks to a cluster.
type kubeFlags struct {
	config *genericclioptions.ConfigFlags
}

func newKubeFlags() *kubeFlags {
	empty := func() *string { s := ""; return &s }
	return &kubeFlags{config: &genericclioptions.ConfigFlags{
		KubeConfig: empty(),
		Context:    empty(),
		Namespace:  empty(),
	}}
}

// addFlags registers --kubeconfig, --context and -n/--namespace.
func (k *kubeFlags) addFlags(fs *pflag.FlagSet) { k.config.AddFlags(fs) }

// namespaceFlag returns -n as given ("" when absent), without reading any kubeconfig.
func (k *kubeFlags) namespaceFlag() string { return *k.config.Namespace }

// namespace returns -n, else the kubeconfig context's namespace, else "default".
func (k *kubeFlags) namespace() (string, error) {
	ns, _, err := k.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

var errNoKubeconfig = errors.New("no kubeconfig found: set --kubeconfig or KUBECONFIG, or create ~/.kube/config")

// restConfig loads the client configuration, with a clear message when there is no kubeconfig.
func (k *kubeFlags) restConfig() (*rest.Config, error) {
	// Like kubectl, cli-runtime falls back to http://localhost:8080 when there is no kubeconfig at all; say so
	// instead of reporting a refused connection to a server the user never named. (Inside a pod, the in-cluster
	// configuration applies instead.)
	if raw, err := k.config.ToRawKubeConfigLoader().RawConfig(); err == nil && len(raw.Clusters) == 0 && !inCluster() {
		return nil, errNoKubeconfig
	}
	cfg, err := k.config.ToRESTConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) || errors.Is(err, clientcmd.ErrEmptyConfig) {
			return nil, errNoKubeconfig
		}
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return cfg, nil
}

// client returns a clientset for the selected cluster.
func (k *kubeFlags) client() (kubernetes.Interface, error) {
	cfg, err := k.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}
