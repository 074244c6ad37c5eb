package registry

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"
)

func TestLogrusBridge(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level // the server's level
		log   func()
		want  string // level=... msg=... prefix of the slog line, "" for dropped
	}{
		{name: "warning passes", level: slog.LevelInfo, log: func() { logrus.Warn("disk slow") },
			want: `level=WARN msg="disk slow" component=distribution`},
		{name: "info chatter dropped at info", level: slog.LevelInfo, log: func() { logrus.Info("authorized request") }},
		{name: "info passes at debug", level: slog.LevelDebug, log: func() { logrus.Info("authorized request") },
			want: `level=INFO msg="authorized request" component=distribution`},
		{name: "client error is not an error", level: slog.LevelInfo, log: func() {
			logrus.WithField("http.response.status", 404).Error("response completed with error")
		}},
		{name: "server error is an error", level: slog.LevelInfo, log: func() {
			logrus.WithField("http.response.status", 500).Error("response completed with error")
		}, want: `level=ERROR msg="response completed with error" component=distribution http.response.status=500`},
		{name: "missing credentials are not a warning", level: slog.LevelInfo, log: func() {
			logrus.Warn(`error authorizing context: basic authentication challenge for realm "r": invalid authorization credential`)
		}},
		{name: "wrong credentials are a warning", level: slog.LevelInfo, log: func() {
			logrus.Warn(`error authorizing context: basic authentication challenge for realm "r": authentication failure`)
		}, want: `level=WARN msg="error authorizing context: basic authentication challenge for realm \"r\": authentication failure"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			bridgeLogrus(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level:       tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
			})), tt.level)
			t.Cleanup(func() { logrusTarget.Store(nil) })
			tt.log()
			got := strings.TrimSpace(buf.String())
			if tt.want == "" {
				if got != "" {
					t.Errorf("want nothing logged, got %q", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got[:min(len(got), len(tt.want))]); diff != "" {
				t.Errorf("slog line (-want +got):\n%s", diff)
			}
		})
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
