package basic

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus counters, resolved to their label values once.
type metrics struct {
	success, failure, throttled prometheus.Counter
	hit, miss                   prometheus.Counter
	reloadOK, reloadFailed      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_auth_requests_total",
		Help: "Requests carrying Basic credentials, by result: success, failure or throttled.",
	}, []string{"result"})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_auth_cache_total",
		Help: "Lookups in the verified-credential cache, by result: hit or miss.",
	}, []string{"result"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_kit_auth_reloads_total",
		Help: "Reloads of the htpasswd file after it changed, by result: success or failure.",
	}, []string{"result"})
	if reg != nil {
		var err error
		if requests, err = register(reg, requests); err != nil {
			return nil, err
		}
		if cache, err = register(reg, cache); err != nil {
			return nil, err
		}
		if reloads, err = register(reg, reloads); err != nil {
			return nil, err
		}
	}
	return &metrics{
		success:      requests.WithLabelValues("success"),
		failure:      requests.WithLabelValues("failure"),
		throttled:    requests.WithLabelValues("throttled"),
		hit:          cache.WithLabelValues("hit"),
		miss:         cache.WithLabelValues("miss"),
		reloadOK:     reloads.WithLabelValues("success"),
		reloadFailed: reloads.WithLabelValues("failure"),
	}, nil
}

// register registers c, or returns the identical collector already registered (a second controller in the same
// process shares the counters).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}
