package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGCConfigValidate(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n- repositories: '*'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "off", cfg: Config{}},
		{name: "filesystem", cfg: Config{Storage: StorageFilesystem, GC: GCConfig{Interval: time.Hour, Window: time.Hour}}},
		{name: "s3 with redis", cfg: Config{Storage: StorageS3, Redis: RedisConfig{Addrs: []string{"r:6379"}}, GC: GCConfig{Interval: time.Hour}}},
		{name: "s3 without redis", cfg: Config{Storage: StorageS3, GC: GCConfig{Interval: time.Hour}},
			want: []string{"gc-interval: with storage s3 needs redis-addr"}},
		{name: "negative", cfg: Config{GC: GCConfig{Interval: -time.Second, Window: -time.Second}},
			want: []string{"gc-interval: must not be negative", "gc-window: must not be negative"}},
		{name: "bad policy", cfg: Config{GC: GCConfig{RetentionPolicy: bad}}, want: []string{"gc-retention-policy:", "a rule must keep something"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			tt.cfg.GC.validate(tt.cfg, func(key, format string, args ...any) {
				got = append(got, key+": "+fmt.Errorf(format, args...).Error())
			})
			all := strings.Join(got, "\n")
			if len(tt.want) == 0 && all != "" {
				t.Fatalf("unexpected errors:\n%s", all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors lack %q:\n%s", w, all)
				}
			}
		})
	}
}
