package syncer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series, registered on a registry of their own.
type metrics struct {
	reconciles   *prometheus.CounterVec
	secretWrites *prometheus.CounterVec
	saPatches    *prometheus.CounterVec
	conflicts    prometheus.Counter
	leader       prometheus.Gauge
	queueDepth   prometheus.GaugeFunc
	patchDelay   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	const ns, sub = "registry_kit", "pull_secret_sync"
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reconciles_total",
			Help: "Namespace reconciliations, by result (ok, error)."}, []string{"result"}),
		secretWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "secret_writes_total",
			Help: "Writes of pull secret copies, by action (created, updated, deleted)."}, []string{"action"}),
		saPatches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "service_account_patches_total",
			Help: "ServiceAccount imagePullSecrets changes, by action (added, removed)."}, []string{"action"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "conflicts_total",
			Help: "Namespaces skipped because a Secret of the target name exists that the controller did not make."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leader",
			Help: "1 while this replica holds the lease and reconciles, else 0."}),
		queueDepth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_depth",
			Help: "Namespaces waiting to be reconciled."}, depth),
		patchDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "service_account_patch_delay_seconds",
			Help:    "Time from a ServiceAccount's creation (whole seconds, as the API server records it) to the controller adding the pull secret.",
			Buckets: []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600}}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.reconciles, m.secretWrites, m.saPatches, m.conflicts, m.leader, m.queueDepth, m.patchDelay} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering pull-secret sync metrics: %w", err)
		}
	}
	return m, nil
}
