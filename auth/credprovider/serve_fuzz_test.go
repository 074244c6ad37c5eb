package credprovider

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
)

// fuzzPassword is the password the fuzzed credentials hold; no error may quote it.
const fuzzPassword = "fuzz-Secret-Pa55word"

// FuzzServe feeds arbitrary kubelet requests to Serve, and arbitrary credential files to the loader. Beyond not
// panicking: a request Serve answers gets a well-formed v1 response whose every entry names the image's registry,
// and no error quotes a password. Seeds live in testdata/fuzz/FuzzServe and run with the unit tests.
func FuzzServe(f *testing.F) {
	creds := `{"auths":{"127.0.0.1:5000":{"username":"ci","password":"` + fuzzPassword + `"},"*.example.com":{"username":"u","password":"` + fuzzPassword + `"}}}`
	for _, s := range []string{
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"127.0.0.1:5000/app:v1"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"a.example.com/x"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"nginx"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"nginx"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Other","image":"nginx"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"UPPER/x"}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":""}`,
		`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":["x"]}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s), []byte(creds))
	}
	f.Add([]byte(`{}`), []byte(`{"auths":{"reg":{"auth":"!!!`+fuzzPassword+`"}}}`))
	f.Add([]byte(`{}`), []byte(`{"127.0.0.1:5000":{"password":"`+fuzzPassword+`"}}`))
	f.Fuzz(func(t *testing.T, request, credentials []byte) {
		noPassword := func(what string, err error) {
			t.Helper()
			if err != nil && strings.Contains(err.Error(), fuzzPassword) && !bytes.Contains(request, []byte(fuzzPassword)) {
				t.Fatalf("%s: error quotes the password: %q", what, err)
			}
		}
		cfg, err := LoadCredentialsEnv(string(credentials))
		if err != nil {
			if bytes.Count(credentials, []byte(fuzzPassword)) > 0 && strings.Contains(err.Error(), fuzzPassword) {
				t.Fatalf("loading credentials: error quotes the password: %q", err)
			}
			return
		}
		var out bytes.Buffer
		err = Serve(bytes.NewReader(request), &out, cfg, time.Minute)
		noPassword("Serve", err)
		if err != nil {
			if out.Len() != 0 {
				t.Fatalf("Serve failed but wrote %d bytes", out.Len())
			}
			return
		}
		var resp credentialproviderv1.CredentialProviderResponse
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatalf("response is not JSON: %v", err)
		}
		if resp.APIVersion != credentialproviderv1.SchemeGroupVersion.String() || resp.Kind != responseKind ||
			resp.CacheKeyType != credentialproviderv1.RegistryPluginCacheKeyType {
			t.Fatalf("response has apiVersion %q kind %q cacheKeyType %q", resp.APIVersion, resp.Kind, resp.CacheKeyType)
		}
		var req credentialproviderv1.CredentialProviderRequest
		_ = json.Unmarshal(request, &req)
		for key, a := range resp.Auth {
			if a.Username == "" || a.Password == "" {
				t.Fatalf("response entry %q has an empty username or password", key)
			}
			if strings.Contains(key, "://") {
				t.Fatalf("response key %q has a scheme; the kubelet matches schemeless patterns", key)
			}
		}
	})
}
