package registry

import (
	"os"
	"testing"
)

// TestReleaseStartupPages runs the release in this (cgo-enabled, dynamically linked when cgo is on) test binary and
// keeps working: code, constant data and relocated read-only data stay usable.
func TestReleaseStartupPages(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	spans, err := cleanExecutableSpans(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) == 0 {
		t.Fatalf("no clean read-only mapping of %s found", exe)
	}
	if err := releaseStartupPages(); err != nil {
		t.Fatal(err)
	}
	// Calls through what a bad release would break: environment (cgo setenv when linked), the dynamic loader's
	// data, formatted output through code paged back in.
	t.Setenv("REGISTRY_KIT_RELEASE_TEST", "1")
	if os.Getenv("REGISTRY_KIT_RELEASE_TEST") != "1" {
		t.Error("environment lost")
	}
	ts := startServer(t, testConfig(t))
	if code, _ := get(t, ts.url+"/healthz"); code != 200 {
		t.Errorf("healthz after the release = %d", code)
	}
}
