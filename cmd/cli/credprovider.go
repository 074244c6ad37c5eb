package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/auth/credprovider"
	"github.com/registry-kit/registry-kit/auth/dockerconfig"
	"github.com/registry-kit/registry-kit/auth/satoken"
)

const credentialProviderLong = `Run as a kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1): read a
CredentialProviderRequest on stdin, answer with the credentials for the image's registry from a root-only
file on the node, so pods pull from registry-kit with no imagePullSecrets at all.

On each node:
  1. install this binary as <bin-dir>/registry-kit, e.g. /usr/local/lib/kubelet/credential-providers/registry-kit
     (cloud plugins such as ecr-credential-provider go in the same directory);
  2. write the credentials to /etc/registry-kit/credential-provider.json, owned by root, mode 0600, in
     .dockerconfigjson form: {"auths":{"HOST:PORT":{"username":"...","password":"..."}}}
     (registry-kit pull-secret create ... -o json prints one; take its .dockerconfigjson);
  3. registry-kit credential-provider config --match HOST:PORT > /etc/kubernetes/credential-provider-config.yaml
  4. restart the kubelet with
       --image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml
       --image-credential-provider-bin-dir=/usr/local/lib/kubelet/credential-providers

Credentials are read from --config, else from $` + credprovider.CredentialsEnv + ` (the JSON itself), else from
` + credprovider.DefaultCredentialsFile + `. A file readable by group or others is refused.

With --service-account-tokens there is no credentials file at all: the kubelet passes the pod's own ServiceAccount
token (KEP-4412, Kubernetes 1.34+; generate the config with ` + "`config --service-account-tokens`" + `), and the plugin
returns it as the password of user ` + satoken.Username + `; ` + "`registry-kit serve --service-account-audience`" + ` verifies it
and the access policy decides per namespace and ServiceAccount (namespaces: / serviceAccounts: rules).`

type credentialProviderOptions struct {
	streams              IOStreams
	config               string
	cacheDuration        time.Duration
	serviceAccountTokens bool
}

func newCredentialProviderCommand(streams IOStreams) *cobra.Command {
	o := &credentialProviderOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "credential-provider",
		Short: "Kubelet image credential provider for registry-kit (run by the kubelet)",
		Long:  credentialProviderLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.serviceAccountTokens {
				return o.serveServiceAccountToken(cmd.Flags().Changed("config"))
			}
			creds, err := o.credentials(cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if err := credprovider.Serve(streams.In, streams.Out, creds, o.cacheDuration); err != nil {
				return fmt.Errorf("credential provider: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.config, "config", credprovider.DefaultCredentialsFile, "credentials file (mode 0600), docker-config form")
	cmd.Flags().DurationVar(&o.cacheDuration, "cache-duration", credprovider.DefaultCacheDuration, "how long the kubelet may cache the answer")
	cmd.Flags().BoolVar(&o.serviceAccountTokens, "service-account-tokens", false, "answer with the pod's ServiceAccount token from the request (no credentials file)")
	cmd.AddCommand(newCredentialProviderConfigCommand(streams))
	return cmd
}

func (o *credentialProviderOptions) credentials(configGiven bool) (*dockerconfig.Config, error) {
	if o.cacheDuration < 0 {
		return nil, fmt.Errorf("--cache-duration %s is negative", o.cacheDuration)
	}
	if v, ok := os.LookupEnv(credprovider.CredentialsEnv); ok && !configGiven {
		return credprovider.LoadCredentialsEnv(v)
	}
	return credprovider.LoadCredentialsFile(o.config)
}

func (o *credentialProviderOptions) serveServiceAccountToken(configGiven bool) error {
	if configGiven {
		return errors.New("--config: not used with --service-account-tokens (the credential is the pod's token)")
	}
	if o.cacheDuration < 0 {
		return fmt.Errorf("--cache-duration %s is negative", o.cacheDuration)
	}
	if err := credprovider.ServeServiceAccountToken(o.streams.In, o.streams.Out, o.cacheDuration, time.Now()); err != nil {
		return fmt.Errorf("credential provider: %w", err)
	}
	return nil
}

func newCredentialProviderConfigCommand(streams IOStreams) *cobra.Command {
	var o credprovider.ConfigOptions
	cmd := &cobra.Command{
		Use:   "config --match HOST[:PORT] [--match ...] [--with-ecr] [--with-acr] [--with-gcp]",
		Short: "Print the kubelet CredentialProviderConfig (kubelet.config.k8s.io/v1) for registry-kit and cloud registries",
		Long: `Print the file the kubelet's --image-credential-provider-config flag points at, with registry-kit's provider
for the --match registries and, optionally, the cloud plugins that replaced the kubelet's built-in cloud
credentials in Kubernetes 1.26+: ecr-credential-provider (Amazon ECR), acr-credential-provider (Azure ACR),
auth-provider-gcp (GCR and Artifact Registry). Each plugin binary must be installed under its provider name in
the directory given to --image-credential-provider-bin-dir.

--match takes host[:port] exactly as images name the registry (a port must match exactly; globs like
*.example.com match one DNS label).

--service-account-tokens makes registry-kit's provider pass each pod's own ServiceAccount token (issued for
--audience) instead of a node credentials file: the entry gets tokenAttributes with cacheType Token (the kubelet
caches the answer per token, so a credential never serves a pod of another ServiceAccount) and
requireServiceAccount: true. The API server must let kubelets request that audience (RBAC verb
request-serviceaccounts-token-audience; ` + "`deploy --service-account-auth`" + ` creates it).`,
		Example: `  registry-kit credential-provider config --match 127.0.0.1:5000 > /etc/kubernetes/credential-provider-config.yaml
  registry-kit credential-provider config --match registry.example.com --with-ecr
  registry-kit credential-provider config --match registry.example.com --service-account-tokens --audience registry-kit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ServiceAccountTokens && cmd.Flags().Changed("credentials-file") {
				return errors.New("--credentials-file: not used with --service-account-tokens (the credential is the pod's token)")
			}
			cfg, err := credprovider.GenerateConfig(o)
			if err != nil {
				return err
			}
			b, err := credprovider.MarshalConfig(cfg)
			if err != nil {
				return err
			}
			_, err = streams.Out.Write(b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.MatchImages, "match", nil, "registry host[:port][/path] images use (repeatable)")
	f.StringVar(&o.CredentialsFile, "credentials-file", credprovider.DefaultCredentialsFile, "credentials file on the node, passed to the plugin")
	f.DurationVar(&o.CacheDuration, "cache-duration", credprovider.DefaultCacheDuration, "how long the kubelet caches registry-kit's answers")
	f.BoolVar(&o.WithECR, "with-ecr", false, "add ecr-credential-provider for Amazon ECR")
	f.BoolVar(&o.WithACR, "with-acr", false, "add acr-credential-provider for Azure Container Registry")
	f.StringVar(&o.ACRConfig, "acr-config", credprovider.DefaultACRConfig, "azure.json passed to acr-credential-provider")
	f.BoolVar(&o.WithGCP, "with-gcp", false, "add auth-provider-gcp for GCR and Artifact Registry")
	f.BoolVar(&o.ServiceAccountTokens, "service-account-tokens", false, "pass each pod's ServiceAccount token as its registry credential (KEP-4412 tokenAttributes) instead of a node credentials file")
	f.StringVar(&o.Audience, "audience", "", "token audience with --service-account-tokens (default \""+credprovider.DefaultAudience+"\"; the registry's --service-account-audience)")
	return cmd
}
