package gc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/registry-kit/registry-kit/registry/gc"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := gc.NewMetrics(reg)
	start := time.Unix(1_800_000_000, 0)
	m.Observe(gc.Report{Started: start, Took: 2 * time.Second, Repositories: 3, StorageBytes: 5000,
		Blobs: []gc.Blob{{Size: 100}, {Size: 200}}, Bytes: 300, Untagged: []gc.Manifest{{}}}, nil)
	m.Observe(gc.Report{Started: start.Add(time.Hour), Took: time.Second}, errors.New("listing blobs: boom"))
	want := `
# HELP registry_kit_gc_blobs_removed_total Blobs garbage collection deleted.
# TYPE registry_kit_gc_blobs_removed_total counter
registry_kit_gc_blobs_removed_total 2
# HELP registry_kit_gc_bytes_removed_total Bytes of blob data garbage collection deleted.
# TYPE registry_kit_gc_bytes_removed_total counter
registry_kit_gc_bytes_removed_total 300
# HELP registry_kit_gc_errors_total Garbage collections that ended with an error.
# TYPE registry_kit_gc_errors_total counter
registry_kit_gc_errors_total 1
# HELP registry_kit_gc_last_success_timestamp_seconds When the last garbage collection without error ended (Unix time).
# TYPE registry_kit_gc_last_success_timestamp_seconds gauge
registry_kit_gc_last_success_timestamp_seconds 1.800000002e+09
# HELP registry_kit_gc_runs_total Garbage collections run (dry runs included).
# TYPE registry_kit_gc_runs_total counter
registry_kit_gc_runs_total 2
# HELP registry_kit_storage_bytes Bytes of blob data in the store, as the last garbage collection found them after its sweep.
# TYPE registry_kit_storage_bytes gauge
registry_kit_storage_bytes 5000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "registry_kit_gc_blobs_removed_total",
		"registry_kit_gc_bytes_removed_total", "registry_kit_gc_errors_total", "registry_kit_gc_last_success_timestamp_seconds",
		"registry_kit_gc_runs_total", "registry_kit_storage_bytes"); err != nil {
		t.Error(err)
	}
	// A second server in the process reuses the series.
	gc.NewMetrics(reg).Observe(gc.Report{Started: start, Repositories: 1, StorageBytes: 10}, nil)
	if got := testutil.ToFloat64(mustGauge(t, reg, "registry_kit_storage_bytes")); got != 10 {
		t.Errorf("storage bytes after the second server's run: %v", got)
	}
}

func mustGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}
