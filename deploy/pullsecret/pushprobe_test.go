package pullsecret

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/registry-kit/registry-kit/internal/registrytest"
)

// TestCanPush runs the probe against a real registry-kit server with an access policy.
func TestCanPush(t *testing.T) {
	srv := registrytest.Start(t, registrytest.Options{
		Users: map[string]string{"admin": "admin-pw", "puller": "puller-pw", "pusher": "pusher-pw"},
		Policy: "rules:\n  - users: [admin]\n    repos: ['**']\n    actions: ['*']\n" +
			"  - users: [puller]\n    repos: ['**']\n    actions: [pull]\n" +
			"  - users: [pusher]\n    repos: ['**']\n    actions: [pull, push]\n",
	})
	server := srv.Host

	tests := []struct {
		user, password string
		want           bool
	}{
		{"admin", "admin-pw", true},
		{"pusher", "pusher-pw", true},
		{"puller", "puller-pw", false},
		{"puller", "wrong", false},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.password, func(t *testing.T) {
			got, err := CanPush(context.Background(), server, tt.user, tt.password, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CanPush(%s) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	// The probes left no upload behind: each was cancelled (distribution v3.1.2 leaves an empty hash state
	// directory after a cancel; the upload's data and start time are gone).
	time.Sleep(50 * time.Millisecond)
	uploads := filepath.Join(srv.DataDir, "docker", "registry", "v2", "repositories", ProbeRepository, "_uploads")
	_ = filepath.WalkDir(uploads, func(p string, d os.DirEntry, err error) error {
		if err == nil && (d.Name() == "data" || d.Name() == "startedat") {
			t.Errorf("an upload the probe started is still there: %s", p)
		}
		return nil
	})
	if _, err := CanPush(context.Background(), "127.0.0.1:1", "a", "b", nil); err == nil {
		t.Error("a registry that does not answer gave no error")
	}
}
