package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease timing defaults (those of kube-controller-manager).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLostLeadership is returned by Run when this replica stopped holding the lease while it ran: the process
// should exit (and be restarted) so that it never reconciles beside the new leader.
var ErrLostLeadership = errors.New("lost the leader lease")

// RunOptions say how Run elects a leader and where it serves /healthz and /metrics. Options.Metrics is ignored:
// Run registers the controller's series on the registry /metrics serves.
type RunOptions struct {
	Options
	// LeaseNamespace and LeaseName locate the coordination.k8s.io Lease; both required.
	LeaseNamespace, LeaseName string
	// Identity names this replica in the Lease; default hostname plus a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go's leaderelection; defaults above.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Listener serves /healthz and /metrics; nil serves nothing.
	Listener net.Listener
}

// Run starts the informers, then reconciles while this replica holds the Lease, until ctx ends (nil) or the lease
// is lost (ErrLostLeadership).
func Run(ctx context.Context, client kubernetes.Interface, cfg Config, o RunOptions) error {
	if o.LeaseNamespace == "" || o.LeaseName == "" {
		return errors.New("pull-secret sync: the leader lease needs a namespace and a name")
	}
	if o.Identity == "" {
		o.Identity = defaultIdentity()
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		o.Logger = log
	}
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("registering process metrics: %w", err)
		}
	}
	o.Metrics = reg // what /metrics serves
	c, err := New(client, cfg, o.Options)
	if err != nil {
		return err
	}
	defer c.Shutdown()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	if o.Listener != nil {
		srv := &http.Server{Handler: handler(c, reg), ReadHeaderTimeout: 5 * time.Second}
		go func() { serveErr <- srv.Serve(o.Listener) }()
		defer srv.Close()
	}

	log.Info("starting", "source", cfg.Source.String(), "target", c.cfg.TargetName, "identity", o.Identity)
	if err := c.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var led atomic.Bool
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: o.LeaseNamespace, Name: o.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
		},
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				led.Store(true)
				log.Info("leading: reconciling", "lease", o.LeaseNamespace+"/"+o.LeaseName)
				c.Run(ctx)
			},
			OnStoppedLeading: func() {
				if led.Load() {
					log.Info("stopped leading", "lease", o.LeaseNamespace+"/"+o.LeaseName)
				}
			},
			OnNewLeader: func(id string) {
				if id != o.Identity {
					log.Info("standing by", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("setting up leader election: %w", err)
	}
	elected := make(chan struct{})
	go func() { elector.Run(ctx); close(elected) }()
	select {
	case <-elected:
	case err := <-serveErr:
		cancel()
		<-elected
		return fmt.Errorf("serving health and metrics: %w", err)
	}
	if ctx.Err() != nil || !led.Load() {
		return nil
	}
	return ErrLostLeadership
}

// handler serves /healthz (200 once the caches synced) and /metrics.
func handler(c *Controller, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Synced() {
			http.Error(w, "informer caches not synced yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "registry-kit"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}
