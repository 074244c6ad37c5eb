package credprovider

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// strictDecode decodes YAML with the kubelet's config types, rejecting unknown or duplicate fields.
func strictDecode(t *testing.T, data []byte) *kubeletconfigv1.CredentialProviderConfig {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := kubeletconfigv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	obj, gvk, err := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("strict decode with kubelet.config.k8s.io/v1 types: %v", err)
	}
	if gvk.String() != "kubelet.config.k8s.io/v1, Kind=CredentialProviderConfig" {
		t.Fatalf("decoded %s", gvk)
	}
	return obj.(*kubeletconfigv1.CredentialProviderConfig)
}

// checkGolden compares cfg's YAML with testdata/golden (rewritten with -update), decodes it strictly with the
// kubelet's types and checks the round trip; it returns the decoded config.
func checkGolden(t *testing.T, cfg *kubeletconfigv1.CredentialProviderConfig, golden string) *kubeletconfigv1.CredentialProviderConfig {
	t.Helper()
	out, err := MarshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden = filepath.Join("testdata", golden)
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(out)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", golden, diff)
	}
	decoded := strictDecode(t, out)
	if diff := cmp.Diff(cfg.Providers, decoded.Providers); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	return decoded
}

func TestGenerateConfig(t *testing.T) {
	tests := []struct {
		name   string
		opts   ConfigOptions
		golden string
	}{
		{name: "registry-kit only", opts: ConfigOptions{MatchImages: []string{"127.0.0.1:5000"}, CacheDuration: DefaultCacheDuration}, golden: "registry-kit.yaml"},
		{
			name: "with every cloud",
			opts: ConfigOptions{
				MatchImages:     []string{"registry.example.com:443", "*.corp.example"},
				CredentialsFile: "/etc/registry-kit/creds.json",
				CacheDuration:   time.Hour,
				WithECR:         true, WithACR: true, WithGCP: true,
			},
			golden: "with-clouds.yaml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := GenerateConfig(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			decoded := checkGolden(t, cfg, tt.golden)
			if err := Validate(decoded); err != nil {
				t.Errorf("kubelet validation: %v", err)
			}
		})
	}
}

func TestGenerateConfigCloudEntries(t *testing.T) {
	cfg, err := GenerateConfig(ConfigOptions{MatchImages: []string{"r:1"}, WithECR: true, WithACR: true, WithGCP: true})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]kubeletconfigv1.CredentialProvider{}
	for _, p := range cfg.Providers {
		byName[p.Name] = p
	}
	ecr := byName["ecr-credential-provider"]
	if ecr.DefaultCacheDuration.Duration != 12*time.Hour || ecr.APIVersion != "credentialprovider.kubelet.k8s.io/v1" ||
		!cmp.Equal(ecr.MatchImages[:3], []string{"*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com.cn", "*.dkr.ecr-fips.*.amazonaws.com"}) {
		t.Errorf("ecr entry: %+v", ecr)
	}
	if acr := byName["acr-credential-provider"]; !cmp.Equal(acr.Args, []string{"/etc/kubernetes/azure.json"}) ||
		!cmp.Equal(acr.MatchImages, []string{"*.azurecr.io", "*.azurecr.cn", "*.azurecr.de", "*.azurecr.us"}) {
		t.Errorf("acr entry: %+v", acr)
	}
	if gcp := byName["auth-provider-gcp"]; !cmp.Equal(gcp.Args, []string{"get-credentials", "--v=3"}) ||
		!cmp.Equal(gcp.MatchImages, []string{"container.cloud.google.com", "gcr.io", "*.gcr.io", "*.pkg.dev"}) {
		t.Errorf("gcp entry: %+v", gcp)
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    ConfigOptions
		wantErr string
	}{
		{name: "nothing to match", opts: ConfigOptions{}, wantErr: "no registry to match"},
		{name: "scheme", opts: ConfigOptions{MatchImages: []string{"https://r:5000"}}, wantErr: `match image "https://r:5000" must not have a scheme`},
		{name: "tag", opts: ConfigOptions{MatchImages: []string{"r:5000/app:v1"}}, wantErr: "a tag or digest never matches"},
		{name: "bad port", opts: ConfigOptions{MatchImages: []string{"r:port"}}, wantErr: `match image "r:port" is invalid`},
		{name: "negative cache", opts: ConfigOptions{MatchImages: []string{"r"}, CacheDuration: -time.Second}, wantErr: "negative"},
		{name: "every problem", opts: ConfigOptions{MatchImages: []string{"", "a://b"}}, wantErr: "match image is empty\nmatch image \"a://b\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := GenerateConfig(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
