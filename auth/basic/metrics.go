package basic

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// maxBadLineSeries bounds the per-line series of registry_kit_auth_htpasswd_bad_line.
const maxBadLineSeries = 100

// metrics are the controller's Prometheus series, resolved to their label values once.
type metrics struct {
	success, failure, throttled           prometheus.Counter
	hit, miss                             prometheus.Counter
	reloadOK, reloadPartial, reloadFailed prometheus.Counter

	users, badLines, readable prometheus.Gauge
	badLine                   *prometheus.GaugeVec
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
		Help: "Reloads of the htpasswd file after it changed, by result: success, partial (bad lines skipped) or " +
			"failure (file missing or unreadable: every user refused).",
	}, []string{"result"})
	users := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "registry_kit_auth_htpasswd_users",
		Help: "Users in effect from the htpasswd file.",
	})
	badLines := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "registry_kit_auth_htpasswd_bad_lines",
		Help: "Lines of the htpasswd file in effect that were skipped because they do not parse.",
	})
	badLine := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "registry_kit_auth_htpasswd_bad_line",
		Help: "1 for each skipped line of the htpasswd file in effect, by line number (the first 100).",
	}, []string{"line"})
	readable := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "registry_kit_auth_htpasswd_readable",
		Help: "1 while the htpasswd file can be read; 0 while it is missing or unreadable and every user is refused.",
	})
	m := &metrics{}
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
		if users, err = register(reg, users); err != nil {
			return nil, err
		}
		if badLines, err = register(reg, badLines); err != nil {
			return nil, err
		}
		if badLine, err = register(reg, badLine); err != nil {
			return nil, err
		}
		if readable, err = register(reg, readable); err != nil {
			return nil, err
		}
	}
	m.success, m.failure, m.throttled = requests.WithLabelValues("success"), requests.WithLabelValues("failure"),
		requests.WithLabelValues("throttled")
	m.hit, m.miss = cache.WithLabelValues("hit"), cache.WithLabelValues("miss")
	m.reloadOK, m.reloadPartial, m.reloadFailed = reloads.WithLabelValues("success"), reloads.WithLabelValues("partial"),
		reloads.WithLabelValues("failure")
	m.users, m.badLines, m.badLine, m.readable = users, badLines, badLine, readable
	return m, nil
}

// fileLoaded records a file now in effect with this many users and these skipped lines.
func (m *metrics) fileLoaded(users int, skipped []*htpasswd.LineError) {
	m.readable.Set(1)
	m.users.Set(float64(users))
	m.badLines.Set(float64(len(skipped)))
	m.badLine.Reset()
	for _, le := range skipped[:min(len(skipped), maxBadLineSeries)] {
		m.badLine.WithLabelValues(strconv.Itoa(le.Line)).Set(1)
	}
}

// fileUnreadable records that no file is in effect.
func (m *metrics) fileUnreadable() {
	m.readable.Set(0)
	m.users.Set(0)
	m.badLines.Set(0)
	m.badLine.Reset()
}

// register registers c, or returns the identical collector already registered (a second controller in the same
// process shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, err
	}
	return c, nil
}
