package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"
)

// FuzzServeConfigFile feeds arbitrary YAML to serve's --config file reading, the merge into a registry.Config and its
// validation. Paths that would make validation read or write outside a temporary directory (data-dir, htpasswd, TLS
// and secret files) are pinned by flags, which win over the file. Beyond not panicking: --print-config never shows the
// http-secret of the file, and no error quotes it. Seeds live in testdata/fuzz/FuzzServeConfigFile.
func FuzzServeConfigFile(f *testing.F) {
	for _, s := range []string{
		"addr: 127.0.0.1:5000\nrealm: test\nlog-level: debug\nshutdown-grace: 3s\ndelete-enabled: true\n",
		"http-secret: fuzz-http-secret-value\nlog-format: json\n",
		"upload-purge-age: 1h\nupload-purge-interval: 0s\n",
		"no-auth: maybe\n",
		"shutdown-grace: forever\n",
		"adr: typo\n",
		"realm: \"quote\\\"inside\"\n",
		"addr: [1, 2]\n",
		"a: &a [*a, *a]\n",
		"- list\n",
		"metrics-addr: \"\"\naddr: :70000\n",
		"\t: bad indentation",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		secret := fileSecret(data)
		pinned := []string{"--config", file, "--data-dir", dir, "--htpasswd", filepath.Join(dir, "htpasswd"),
			"--tls-cert", "", "--tls-key", "", "--http-secret-file", ""}

		var out, errOut bytes.Buffer
		cmd := newServeCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		cmd.SetArgs(append(pinned, "--print-config"))
		err := cmd.Execute()
		if secret != "" {
			if strings.Contains(out.String(), secret) || strings.Contains(errOut.String(), secret) {
				t.Fatalf("--print-config shows the http-secret")
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("config error quotes the http-secret: %q", err)
			}
		}

		o := &serveOptions{v: viper.New(), cmd: newServeCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})}
		if err := o.cmd.ParseFlags(pinned); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := o.config()
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil && secret != "" && strings.Contains(err.Error(), secret) {
			t.Fatalf("validation error quotes the http-secret: %q", err)
		}
	})
}

// fileSecret returns the http-secret a config file sets, when it is long enough not to show up by chance and appears
// nowhere else in the file (a value shared with another key may legitimately be quoted in that key's error).
func fileSecret(data []byte) string {
	var m map[string]any
	if yaml.Unmarshal(data, &m) != nil {
		return ""
	}
	s, ok := m[secretKey].(string)
	if !ok || len(strings.TrimSpace(s)) < 8 || bytes.Count(data, []byte(s)) != 1 {
		return ""
	}
	return s
}
