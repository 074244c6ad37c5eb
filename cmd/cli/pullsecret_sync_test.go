package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestPullSecretSyncFlags: bad flags are refused before any cluster is contacted, every problem at once, each
// naming its flag.
func TestPullSecretSyncFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "no source", args: nil, want: []string{"--source: required"}},
		{name: "source without namespace", args: []string{"--source", "regcred"}, want: []string{`--source: source secret "regcred": want NAMESPACE/NAME`}},
		{name: "everything wrong at once", args: []string{"--source", "a/b", "--namespace-selector", "a=(", "--service-accounts", "x",
			"--service-account-selector", "k=v", "--workers", "0", "--exclude-namespace", "[", "--lease-duration", "1s", "--renew-deadline", "2s"},
			want: []string{`--namespace-selector "a=("`, "--service-accounts and --service-account-selector: give one", "--workers 0",
				`namespace pattern "["`, "want lease-duration > renew-deadline > retry-period"}},
		{name: "bad target name", args: []string{"--source", "a/b", "--target-name", "Reg_Cred"}, want: []string{`target secret name "Reg_Cred"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := NewRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			root.SetArgs(append([]string{"pull-secret", "sync", "--kubeconfig", "/nonexistent"}, tc.args...))
			err := root.Execute()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
