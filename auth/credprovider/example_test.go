package credprovider_test

import (
	"os"
	"strings"
	"time"

	"github.com/registry-kit/registry-kit/auth/credprovider"
)

func ExampleServe() {
	creds, _ := credprovider.LoadCredentialsEnv(`{"auths":{"127.0.0.1:5000":{"username":"node","password":"example"}}}`)
	req := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"127.0.0.1:5000/app:v1"}`
	_ = credprovider.Serve(strings.NewReader(req), os.Stdout, creds, 5*time.Minute)
	// Output:
	// {"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"5m0s","auth":{"127.0.0.1:5000":{"username":"node","password":"example"}}}
}

func ExampleGenerateConfig() {
	cfg, _ := credprovider.GenerateConfig(credprovider.ConfigOptions{MatchImages: []string{"127.0.0.1:5000"}, CacheDuration: time.Minute})
	b, _ := credprovider.MarshalConfig(cfg)
	os.Stdout.Write(b)
	// Output:
	// apiVersion: kubelet.config.k8s.io/v1
	// kind: CredentialProviderConfig
	// providers:
	// - apiVersion: credentialprovider.kubelet.k8s.io/v1
	//   args:
	//   - credential-provider
	//   - --config
	//   - /etc/registry-kit/credential-provider.json
	//   - --cache-duration
	//   - 1m0s
	//   defaultCacheDuration: 1m0s
	//   matchImages:
	//   - 127.0.0.1:5000
	//   name: registry-kit
}
