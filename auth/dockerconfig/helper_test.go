package dockerconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary act as a docker-credential helper: the tests link it into a temporary
// PATH directory as docker-credential-stub (and -broken), and the helper protocol is spoken for real.
func TestMain(m *testing.M) {
	if name := filepath.Base(os.Args[0]); strings.HasPrefix(name, "docker-credential-") {
		os.Exit(stubHelper(strings.TrimPrefix(name, "docker-credential-"), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// stubHelper knows credentials for the servers in stubStore; "broken" fails with a message; "garbage"
// answers with malformed JSON that contains a password.
func stubHelper(name string, args []string) int {
	if len(args) != 1 || args[0] != "get" {
		fmt.Println("unsupported action")
		return 1
	}
	in, _ := io.ReadAll(os.Stdin)
	server := strings.TrimSpace(string(in))
	switch name {
	case "broken":
		fmt.Println("keychain is locked")
		return 1
	case "hang":
		time.Sleep(time.Hour) // a helper waiting for a prompt nobody answers
		return 1
	case "garbage":
		fmt.Print(`{"Username":"u","Secret":"` + testPassword)
		return 0
	}
	store := map[string][2]string{
		"127.0.0.1:5000": {"alice", testPassword},
		DockerHubKey:     {"hubuser", testPassword},
		"token.example":  {"<token>", testPassword},
	}
	c, ok := store[server]
	if !ok {
		fmt.Println("credentials not found in native keychain")
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"ServerURL": server, "Username": c[0], "Secret": c[1]})
	return 0
}

func installStubHelpers(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"stub", "broken", "garbage", "hang"} {
		if err := os.Symlink(exe, filepath.Join(dir, "docker-credential-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestLookup(t *testing.T) {
	installStubHelpers(t)
	plain := EncodeAuth("bob", testPassword)
	tests := []struct {
		name     string
		config   string
		server   string
		want     Credential
		wantErr  string
		notFound bool
	}{
		{
			name:   "plain auths",
			config: `{"auths":{"127.0.0.1:5000":{"auth":"` + plain + `","email":"b@x"}}}`,
			server: "127.0.0.1:5000",
			want:   Credential{Username: "bob", Password: testPassword, Email: "b@x"},
		},
		{
			name:   "auths key with scheme and path",
			config: `{"auths":{"http://127.0.0.1:5000/v2/":{"username":"bob","password":"` + testPassword + `"}}}`,
			server: "127.0.0.1:5000",
			want:   Credential{Username: "bob", Password: testPassword},
		},
		{
			name:   "docker hub in auths",
			config: `{"auths":{"https://index.docker.io/v1/":{"auth":"` + plain + `"}}}`,
			server: DockerHubKey,
			want:   Credential{Username: "bob", Password: testPassword},
		},
		{
			name:   "credsStore",
			config: `{"auths":{"127.0.0.1:5000":{}},"credsStore":"stub"}`,
			server: "127.0.0.1:5000",
			want:   Credential{Username: "alice", Password: testPassword},
		},
		{
			name:   "credHelpers wins over auths",
			config: `{"auths":{"127.0.0.1:5000":{"auth":"` + plain + `"}},"credHelpers":{"127.0.0.1:5000":"stub"}}`,
			server: "127.0.0.1:5000",
			want:   Credential{Username: "alice", Password: testPassword},
		},
		{
			name:   "docker hub through a helper",
			config: `{"credsStore":"stub"}`,
			server: DockerHubKey,
			want:   Credential{Username: "hubuser", Password: testPassword},
		},
		{
			name:   "docker hub credHelpers keyed docker.io",
			config: `{"credHelpers":{"docker.io":"stub"}}`,
			server: DockerHubKey,
			want:   Credential{Username: "hubuser", Password: testPassword},
		},
		{
			name:   "path-scoped server uses the host's helper",
			config: `{"credHelpers":{"127.0.0.1:5000":"stub"}}`,
			server: "127.0.0.1:5000/team",
			want:   Credential{Username: "alice", Password: testPassword},
		},
		{
			name:   "path-scoped server prefers its own auths entry",
			config: `{"auths":{"127.0.0.1:5000/team":{"username":"team","password":"t"},"127.0.0.1:5000":{"username":"host","password":"h"}}}`,
			server: "127.0.0.1:5000/team",
			want:   Credential{Username: "team", Password: "t"},
		},
		{
			name:   "path-scoped server falls back to the host entry",
			config: `{"auths":{"127.0.0.1:5000":{"username":"host","password":"h"}}}`,
			server: "127.0.0.1:5000/team",
			want:   Credential{Username: "host", Password: "h"},
		},
		{
			name:     "missing server entry",
			config:   `{"auths":{"other:1":{"auth":"` + plain + `"}}}`,
			server:   "127.0.0.1:5000",
			wantErr:  `no credentials found for "127.0.0.1:5000" in the docker config (it has entries for: "other:1")`,
			notFound: true,
		},
		{
			name:     "helper does not know the server",
			config:   `{"credsStore":"stub"}`,
			server:   "127.0.0.1:9999",
			wantErr:  `no credentials found for "127.0.0.1:9999" in credential helper docker-credential-stub`,
			notFound: true,
		},
		{
			name:    "helper fails",
			config:  `{"credsStore":"broken"}`,
			server:  "127.0.0.1:5000",
			wantErr: `running credential helper docker-credential-broken get for "127.0.0.1:5000": err: exit status 1, out: ` + "`keychain is locked`",
		},
		{
			name:    "helper answers garbage",
			config:  `{"credsStore":"garbage"}`,
			server:  "127.0.0.1:5000",
			wantErr: `running credential helper docker-credential-garbage get for "127.0.0.1:5000"`,
		},
		{
			name:    "helper missing",
			config:  `{"credHelpers":{"127.0.0.1:5000":"nope"}}`,
			server:  "127.0.0.1:5000",
			wantErr: `credential helper docker-credential-nope for "127.0.0.1:5000" is not on PATH`,
		},
		{
			name:    "identity token",
			config:  `{"credsStore":"stub"}`,
			server:  "token.example",
			wantErr: "holds an identity token",
		},
		{
			name:    "identity token in auths",
			config:  `{"auths":{"r.example":{"identitytoken":"` + testPassword + `"}}}`,
			server:  "r.example",
			wantErr: "holds an identity token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.Lookup(tt.server)
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
				if got := errors.Is(err, ErrNotFound); got != tt.notFound {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tt.notFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestLookupHelperTimeout: a credential helper that never answers is killed, by the default timeout without a
// context deadline and by the context's deadline or cancellation, with an error that says so and no credential.
func TestLookupHelperTimeout(t *testing.T) {
	installStubHelpers(t)
	cfg, err := Parse([]byte(`{"credsStore":"hang"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { helperTimeout = d }(helperTimeout)
	tests := []struct {
		name    string
		timeout time.Duration // helperTimeout
		ctx     func() (context.Context, context.CancelFunc)
		isTime  bool
		want    string
	}{
		{name: "default timeout", timeout: 300 * time.Millisecond, ctx: func() (context.Context, context.CancelFunc) {
			return context.Background(), func() {}
		}, isTime: true, want: `docker-credential-hang get for "127.0.0.1:5000" gave no answer in`},
		{name: "context deadline first", timeout: time.Hour, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, isTime: true, want: "waiting for a locked keychain or a prompt?"},
		{name: "cancelled", timeout: time.Hour, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, want: "context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			helperTimeout = tc.timeout
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := cfg.LookupContext(ctx, "127.0.0.1:5000")
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Lookup returned after %s", elapsed)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if got := errors.Is(err, ErrHelperTimeout); got != tc.isTime {
				t.Errorf("errors.Is(err, ErrHelperTimeout) = %v, want %v", got, tc.isTime)
			}
		})
	}
	t.Run("Lookup without a context", func(t *testing.T) {
		helperTimeout = 300 * time.Millisecond
		if _, err := cfg.Lookup("127.0.0.1:5000"); !errors.Is(err, ErrHelperTimeout) {
			t.Fatalf("err = %v, want ErrHelperTimeout", err)
		}
	})
}
