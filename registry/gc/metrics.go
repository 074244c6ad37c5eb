package gc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collector's Prometheus series.
type Metrics struct {
	storageBytes, lastRun, lastSuccess, duration prometheus.Gauge
	runs, errors, blobs, bytes, manifests        prometheus.Counter
}

// NewMetrics creates the series and registers them with reg when it is not nil (an already registered series is
// reused, as a second server in one process would).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		storageBytes: gauge(reg, "registry_kit_storage_bytes", "Bytes of blob data in the store, as the last garbage collection found them after its sweep."),
		lastRun:      gauge(reg, "registry_kit_gc_last_run_timestamp_seconds", "When the last garbage collection ended (Unix time)."),
		lastSuccess:  gauge(reg, "registry_kit_gc_last_success_timestamp_seconds", "When the last garbage collection without error ended (Unix time)."),
		duration:     gauge(reg, "registry_kit_gc_duration_seconds", "How long the last garbage collection took."),
		runs:         counter(reg, "registry_kit_gc_runs_total", "Garbage collections run (dry runs included)."),
		errors:       counter(reg, "registry_kit_gc_errors_total", "Garbage collections that ended with an error."),
		blobs:        counter(reg, "registry_kit_gc_blobs_removed_total", "Blobs garbage collection deleted."),
		bytes:        counter(reg, "registry_kit_gc_bytes_removed_total", "Bytes of blob data garbage collection deleted."),
		manifests:    counter(reg, "registry_kit_gc_manifests_removed_total", "Untagged manifests garbage collection deleted."),
	}
	return m
}

// Observe records one run.
func (m *Metrics) Observe(rep Report, err error) {
	if m == nil {
		return
	}
	end := rep.Started.Add(rep.Took)
	m.runs.Inc()
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	m.duration.Set(rep.Took.Seconds())
	if err != nil {
		m.errors.Inc()
	} else {
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
	if rep.DryRun || rep.Repositories == 0 && rep.StorageBytes == 0 && err != nil {
		return
	}
	m.storageBytes.Set(float64(rep.StorageBytes))
	if err == nil || rep.Errors > 0 {
		m.blobs.Add(float64(len(rep.Blobs) - min(rep.Errors, len(rep.Blobs))))
		m.bytes.Add(float64(rep.Bytes))
		m.manifests.Add(float64(len(rep.Untagged)))
	}
}

func gauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	return register(reg, g).(prometheus.Gauge)
}

func counter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	return register(reg, c).(prometheus.Counter)
}

func register(reg prometheus.Registerer, c prometheus.Collector) prometheus.Collector {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			return are.ExistingCollector
		}
	}
	return c
}
