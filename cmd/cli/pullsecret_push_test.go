package cli

import (
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/internal/registrytest"
)

// TestPullSecretWarnsAboutPushCredentials runs pull-secret create (-o yaml, no cluster) against a real registry:
// admin credentials get the warning, the pull-only user's do not.
func TestPullSecretWarnsAboutPushCredentials(t *testing.T) {
	server := registrytest.Start(t, registrytest.Options{
		Users: map[string]string{"admin": "admin-pw", "puller": "puller-pw"},
		Policy: "rules:\n  - users: [admin]\n    repos: ['**']\n    actions: [pull, push, delete]\n" +
			"  - users: [puller]\n    repos: ['**']\n    actions: [pull]\n",
	}).Host

	for _, tt := range []struct {
		user string
		warn bool
	}{{"admin", true}, {"puller", false}} {
		t.Run(tt.user, func(t *testing.T) {
			_, stderr, err := runCLI(t, tt.user+"-pw\n", "pull-secret", "create", "regcred", "--server", server,
				"--username", tt.user, "--password-stdin", "-n", "apps", "-o", "yaml")
			if err != nil {
				t.Fatal(err)
			}
			want := `Warning: user "` + tt.user + `" can push to ` + server
			if got := strings.Contains(stderr, want); got != tt.warn {
				t.Errorf("warning shown = %v, want %v; stderr:\n%s", got, tt.warn, stderr)
			}
			if strings.Contains(stderr, tt.user+"-pw") {
				t.Error("the password reached stderr")
			}
			if strings.Contains(stderr, "could not check") {
				t.Errorf("the probe failed: %s", stderr)
			}
		})
	}
}
