package registry

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestTracingExportsOnlyWhenAsked runs a real OTLP/HTTP receiver and checks spans reach it with Tracing on, and
// nothing does with it off although the OTEL_* environment points at the receiver in both cases.
func TestTracingExportsOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracing bool
	}{
		{name: "off by default", tracing: false},
		{name: "on when asked", tracing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posts atomic.Int64
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
					posts.Add(1)
				}
				w.WriteHeader(http.StatusOK)
			}))
			defer receiver.Close()
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.URL)

			cfg := testConfig(t)
			cfg.Tracing = tc.tracing
			ts := startServer(t, cfg)
			if code, _ := get(t, ts.url+"/v2/"); code != http.StatusUnauthorized {
				t.Fatalf("GET /v2/ = %d, want 401", code)
			}
			if err := ts.stop(); err != nil { // shutdown flushes the batch of spans
				t.Fatalf("stopping the server: %v", err)
			}
			switch n := posts.Load(); {
			case tc.tracing && n == 0:
				t.Error("tracing on: no spans reached the OTLP receiver")
			case !tc.tracing && n != 0:
				t.Errorf("tracing off: %d exports reached the OTLP receiver", n)
			}
		})
	}
}
