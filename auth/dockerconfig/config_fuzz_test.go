package dockerconfig

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to every payload parser (config.json, .dockerconfigjson, .dockercfg). Beyond not
// panicking: an error never quotes a password or an auth field, and a parsed config answers Match and Lookup.
// Seeds live in testdata/fuzz/FuzzParse and run with the unit tests.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"auths":{"127.0.0.1:5000":{"username":"ci","password":"s3cret-password","auth":"Y2k6czNjcmV0LXBhc3N3b3Jk"}}}`,
		`{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpodWItcGFzc3dvcmQ="}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}`,
		`{"127.0.0.1:5000":{"auth":"Y2k6czNjcmV0LXBhc3N3b3Jk","email":"x@example.com"}}`,
		`{"auths":{"reg:5000/team":{"auth":"not base64!!"}}}`,
		`{"auths":{"reg":{"auth":"bm9jb2xvbg"}}}`,
		`{"auths":{"*.example.com":{"username":"u","password":"p"}}}`,
		`{"auths":null}`,
		`{"auths":{"reg":{"password":12345}}}`,
		`{"auths":{"reg":{"password":"unterminated`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		secrets := payloadSecrets(data)
		check := func(what string, parse func([]byte) (*Config, error), cfg *Config, err error) {
			t.Helper()
			if err != nil {
				for _, s := range secrets {
					if !strings.Contains(err.Error(), s) {
						continue
					}
					// The value may be part of the message's own wording ("password"): the message for the same
					// payload with the value replaced by other characters of the same length must then quote it too.
					_, err2 := parse(bytes.ReplaceAll(data, []byte(s), bytes.Repeat([]byte{filler(s)}, len(s))))
					if err2 == nil || !strings.Contains(err2.Error(), s) {
						t.Fatalf("%s: error quotes a credential: %q", what, err)
					}
				}
				return
			}
			for _, image := range []string{"nginx", "127.0.0.1:5000/app:v1", "reg/team/app", "a.example.com/x@sha256:" + strings.Repeat("a", 64)} {
				for _, m := range cfg.MatchAll(image) {
					if _, ok := cfg.Auths[m.Key]; !ok {
						t.Fatalf("%s: MatchAll(%q) returned key %q that is not in the config", what, image, m.Key)
					}
				}
			}
			for _, k := range cfg.Keys() {
				_ = KeyHost(k)
				_ = IsDockerHub(k)
			}
		}
		parsers := []struct {
			name  string
			parse func([]byte) (*Config, error)
		}{
			{"Parse", Parse},
			{"ParseDockercfg", ParseDockercfg},
			{"ParseSecretData(dockerconfigjson)", func(b []byte) (*Config, error) {
				return ParseSecretData(SecretTypeDockerConfigJSON, map[string][]byte{DockerConfigJSONKey: b})
			}},
			{"ParseSecretData(dockercfg)", func(b []byte) (*Config, error) {
				return ParseSecretData(SecretTypeDockercfg, map[string][]byte{DockercfgKey: b})
			}},
		}
		for _, p := range parsers {
			cfg, err := p.parse(data)
			check(p.name, p.parse, cfg, err)
		}
	})
}

// payloadSecrets returns the password, auth and token values of a payload in either layout (when it is JSON at all)
// that are long enough not to occur in an error's wording by chance and are not also used as a key.
func payloadSecrets(data []byte) []string {
	var out []string
	var keys []string
	add := func(m map[string]json.RawMessage) {
		for k, raw := range m {
			keys = append(keys, k)
			var e map[string]json.RawMessage
			if json.Unmarshal(raw, &e) != nil {
				continue
			}
			for _, f := range []string{"password", "auth", "identitytoken", "registrytoken"} {
				var s string
				if json.Unmarshal(e[f], &s) == nil && len(s) >= 8 {
					out = append(out, s)
				}
			}
		}
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) == nil {
		add(top)
		var auths map[string]json.RawMessage
		if json.Unmarshal(top["auths"], &auths) == nil {
			add(auths)
		}
	}
	var kept []string
	for _, s := range out {
		clash := false
		for _, k := range keys {
			clash = clash || strings.Contains(k, s)
		}
		if !clash {
			kept = append(kept, s)
		}
	}
	return kept
}

// filler is a byte that does not occur in s, to overwrite s with.
func filler(s string) byte {
	for _, c := range []byte("QZXqzx") {
		if !strings.ContainsRune(s, rune(c)) {
			return c
		}
	}
	return 'W'
}

// FuzzAuthField checks that DecodeAuth inverts EncodeAuth for every user name without ':' and never panics on
// arbitrary auth fields.
func FuzzAuthField(f *testing.F) {
	f.Add("ci", "s3cret:with:colons", "Y2k6czNjcmV0")
	f.Add("", "", "====")
	f.Add("ü", "\x00", "Y2k6czNjcmV0LXBhc3N3b3Jk")
	f.Fuzz(func(t *testing.T, user, pass, field string) {
		_, _, _ = DecodeAuth(field)
		if strings.Contains(user, ":") {
			return
		}
		u, p, err := DecodeAuth(EncodeAuth(user, pass))
		if err != nil || u != user || p != pass {
			t.Fatalf("DecodeAuth(EncodeAuth(user, pass)) = %q, (%d bytes), %v; want the inputs back", u, len(p), err)
		}
	})
}
