package dockerconfig

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

const testPassword = "s3cr3t-Pa55" // fake; tests assert it never shows up in an error

func TestParseSecretData(t *testing.T) {
	auth := EncodeAuth("alice", testPassword)
	tests := []struct {
		name       string
		secretType string
		data       map[string][]byte
		want       map[string]Credential
		wantErr    string
	}{
		{
			name:       "dockerconfigjson with auth",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"127.0.0.1:5000":{"auth":"` + auth + `"}}}`)},
			want:       map[string]Credential{"127.0.0.1:5000": {Username: "alice", Password: testPassword, Auth: auth}},
		},
		{
			name:       "auth overrides username and password, unpadded base64",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"username":"x","password":"y","auth":"YTpi"}}}`)},
			want:       map[string]Credential{"r": {Username: "a", Password: "b", Auth: "YTpi"}},
		},
		{
			name:       "legacy dockercfg",
			secretType: SecretTypeDockercfg,
			data:       map[string][]byte{".dockercfg": []byte(`{"https://index.docker.io/v1/":{"username":"u","password":"p","email":"e@x"}}`)},
			want:       map[string]Credential{DockerHubKey: {Username: "u", Password: "p", Email: "e@x"}},
		},
		{
			name:       "empty auths is valid",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)},
			want:       map[string]Credential{},
		},
		{
			name:       "dockercfg payload in a dockerconfigjson secret",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"r":{"auth":"` + auth + `"}}`)},
			wantErr:    `parsing .dockerconfigjson: no "auths" object (a legacy .dockercfg payload belongs in a secret of type kubernetes.io/dockercfg)`,
		},
		{
			name:       "missing key",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{"config.json": []byte(`{}`)},
			wantErr:    "secret of type kubernetes.io/dockerconfigjson has no .dockerconfigjson key",
		},
		{
			name:       "not JSON",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"password":"` + testPassword + `"`)},
			wantErr:    "parsing .dockerconfigjson: invalid JSON",
		},
		{
			name:       "auth not base64",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"auth":"` + testPassword + `!"}}}`)},
			wantErr:    `decoding the auth field of entry "r": not valid base64`,
		},
		{
			name:       "auth without colon",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"auth":"` + EncodeAuth("", "")[:0] + `YWxpY2U="}}}`)},
			wantErr:    `decoding the auth field of entry "r": not of the form base64(username:password)`,
		},
		{
			name:       "wrong field type",
			secretType: SecretTypeDockerConfigJSON,
			data:       map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"password":12345}}}`)},
			wantErr:    `holds a number, want string`,
		},
		{
			name:       "opaque secret",
			secretType: "Opaque",
			data:       map[string][]byte{},
			wantErr:    `secret type "Opaque" is not a pull secret type`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseSecretData(tt.secretType, tt.data)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				if !contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if contains(err.Error(), testPassword) {
					t.Error("error contains the password")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecretData: %v", err)
			}
			if diff := cmp.Diff(tt.want, cfg.Auths); diff != "" {
				t.Errorf("auths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfigJSON(t *testing.T) {
	cfg, err := Parse([]byte(`{"auths":{"127.0.0.1:5000":{}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"},"psFormat":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Auths: map[string]Credential{"127.0.0.1:5000": {}}, CredsStore: "desktop", CredHelpers: map[string]string{"gcr.io": "gcloud"}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
		wantErr string
	}{
		{
			name:    "kubectl shape",
			entries: []Entry{{Server: "127.0.0.1:5000", Username: "alice", Password: "pw", Email: "a@example.com"}},
			want:    `{"auths":{"127.0.0.1:5000":{"username":"alice","password":"pw","email":"a@example.com","auth":"YWxpY2U6cHc="}}}`,
		},
		{
			name:    "no email",
			entries: []Entry{{Server: DockerHubKey, Username: "bob", Password: "p<&>"}},
			want:    `{"auths":{"https://index.docker.io/v1/":{"username":"bob","password":"p\u003c\u0026\u003e","auth":"Ym9iOnA8Jj4="}}}`,
		},
		{
			name:    "two servers sorted",
			entries: []Entry{{Server: "b:1", Username: "u", Password: "p"}, {Server: "a:1", Username: "u", Password: "p"}},
			want:    `{"auths":{"a:1":{"username":"u","password":"p","auth":"dTpw"},"b:1":{"username":"u","password":"p","auth":"dTpw"}}}`,
		},
		{name: "none", wantErr: "no registry entries"},
		{
			name:    "every problem named",
			entries: []Entry{{Server: "r", Username: "a:b", Password: testPassword}, {Server: "s"}},
			wantErr: `username for "r" contains ':'`,
		},
		{
			name:    "duplicate",
			entries: []Entry{{Server: "r", Username: "a", Password: "b"}, {Server: "r", Username: "a", Password: "b"}},
			wantErr: `server "r" given twice`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Build(tt.entries...)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if contains(err.Error(), testPassword) {
					t.Error("error contains the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// What we build, we parse back and match like the kubelet.
			cfg, err := ParseSecretData(SecretTypeDockerConfigJSON, map[string][]byte{DockerConfigJSONKey: got})
			if err != nil {
				t.Fatal(err)
			}
			if _, cred, ok := cfg.Match(tt.entries[0].Server + "/x"); tt.entries[0].Server != DockerHubKey && (!ok || cred.Password != tt.entries[0].Password) {
				t.Errorf("built entry %q does not match its own server", tt.entries[0].Server)
			}
		})
	}
}

func TestNormalizeServer(t *testing.T) {
	tests := []struct {
		in, want, wantNote, wantErr string
	}{
		{in: "127.0.0.1:5000", want: "127.0.0.1:5000", wantNote: "port must match exactly"},
		{in: "  reg.example.com ", want: "reg.example.com", wantNote: "an image reg.example.com:PORT/... will not match"},
		{in: "https://reg.example.com:5000/v2/", want: "reg.example.com:5000", wantNote: "dropped the API path /v2"},
		{in: "http://127.0.0.1:5000", want: "127.0.0.1:5000", wantNote: "dropped the scheme http://"},
		{in: "reg.example.com/team/", want: "reg.example.com/team", wantNote: "images named reg.example.com/team/..."},
		{in: "*.corp.example", want: "*.corp.example"},
		{in: "[::1]:5000", want: "[::1]:5000", wantNote: "port must match exactly"},
		{in: "docker.io", want: DockerHubKey, wantNote: "is Docker Hub"},
		{in: "index.docker.io", want: DockerHubKey, wantNote: "is Docker Hub"},
		{in: "registry-1.docker.io", want: DockerHubKey, wantNote: "is Docker Hub"},
		{in: "https://index.docker.io/v1/", want: DockerHubKey},
		{in: "", wantErr: "registry server is empty"},
		{in: "oci://reg", wantErr: `scheme "oci" is not http or https`},
		{in: "user:pw@reg", wantErr: "without user, query or fragment"},
		{in: "reg?x=1", wantErr: "without user, query or fragment"},
		{in: "re g", wantErr: `"re g" is not a host[:port][/path]`},
		{in: "-reg-", wantErr: `"-reg-" is not a valid host[:port]`},
		{in: "reg:abc", wantErr: "is not a host[:port][/path]"},
		{in: "reg/Team", wantErr: `path "/Team" is not a repository path`},
		{in: "reg/a b", wantErr: `path "/a b" is not a repository path`},
		{in: "reg#", wantErr: "without user, query or fragment"},
		{in: "http://reg/v2/v1/", want: "reg"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, notes, err := NormalizeServer(tt.in)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeServer(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeServer(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeServer(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.wantNote != "" && !contains(strings.Join(notes, "\n"), tt.wantNote) {
				t.Errorf("notes %q lack %q", notes, tt.wantNote)
			}
		})
	}
}
