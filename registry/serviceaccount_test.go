package registry

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/registry-kit/registry-kit/auth/satoken"
)

func TestValidateServiceAccountTokens(t *testing.T) {
	sa := satoken.Config{Audience: "registry-kit", Issuer: "https://k", JWKSURL: "https://k/openid/v1/jwks"}
	tests := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{name: "without an access policy", cfg: func(c *Config) {}, want: "service-account-audience: needs an access policy"},
		{name: "with no-auth", cfg: func(c *Config) { c.NoAuth = true }, want: "service-account-audience: needs authentication"},
		{name: "bad settings are named", cfg: func(c *Config) { c.ServiceAccountTokens.JWKSURL = "nope" }, want: "service-account-jwks-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			c.Htpasswd = filepath.Join(c.DataDir, "htpasswd")
			c.ServiceAccountTokens = sa
			tt.cfg(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
