package manifestcache

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	hit, miss, bypass prometheus.Counter
	// counts are the same numbers, readable in process (Handler.Stats).
	hits, misses, bypassed atomic.Uint64
}

func (m *metrics) onHit()    { m.hit.Inc(); m.hits.Add(1) }
func (m *metrics) onMiss()   { m.miss.Inc(); m.misses.Add(1) }
func (m *metrics) onBypass() { m.bypass.Inc(); m.bypassed.Add(1) }

func newMetrics(reg prometheus.Registerer, s *store) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_manifest_cache_requests_total",
		Help: "Manifest GET and HEAD requests by cache result: hit, miss, or bypass (the cache was not trusted: its invalidation channel was down).",
	}, []string{"result"})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "registry_kit_manifest_cache_bytes",
		Help: "Bytes the manifest cache holds (bodies, headers, keys and a fixed overhead per entry).",
	}, func() float64 { b, _ := s.usage(); return float64(b) })
	if reg != nil {
		requests = register(reg, requests)
		if err := reg.Register(size); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				reg.Unregister(are.ExistingCollector)
				_ = reg.Register(size) // the newest server's cache is the one to report
			}
		}
	}
	return &metrics{hit: requests.WithLabelValues("hit"), miss: requests.WithLabelValues("miss"),
		bypass: requests.WithLabelValues("bypass")}
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}
