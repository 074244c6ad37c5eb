package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// EventComponent is the source of the Events the controller records.
const EventComponent = "registry-kit-pull-secret-sync"

// Options tune a Controller; the zero value is usable.
type Options struct {
	// Logger receives what the controller does (never a Secret's content); nil discards it.
	Logger *slog.Logger
	// Recorder records Events; nil writes them to the cluster as EventComponent.
	Recorder record.EventRecorder
	// Metrics registers the controller's series; nil registers none.
	Metrics prometheus.Registerer
	// Workers reconcile namespaces in parallel (one namespace is never reconciled twice at once); default 4.
	Workers int
}

// Controller keeps the copies and ServiceAccount references right. Start it (informers), then Run it while it
// leads.
type Controller struct {
	cfg         Config
	queue       workqueue.TypedRateLimitingInterface[string]
	factories   []informers.SharedInformerFactory
	synced      []cache.InformerSynced
	r           *reconciler
	log         *slog.Logger
	workers     int
	broadcaster record.EventBroadcaster
	started     sync.Once
}

// New builds a controller for cfg on client. Nothing runs until Start.
func New(client kubernetes.Interface, cfg Config, opts Options) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pull-secret sync configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, log: log, workers: opts.Workers}
	if c.workers <= 0 {
		c.workers = 4
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "pull-secret-sync"})
	m, err := newMetrics(opts.Metrics, func() float64 { return float64(c.queue.Len()) })
	if err != nil {
		return nil, err
	}
	recorder := opts.Recorder
	if recorder == nil {
		c.broadcaster = record.NewBroadcaster()
		c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
		recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventComponent})
	}

	all := informers.NewSharedInformerFactory(client, 0)
	byName := func(name string) informers.SharedInformerOption {
		return informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	}
	// Secrets are watched by name only: the copies everywhere, the source in its namespace (RBAC can limit the
	// controller to Secrets of those names).
	copies := informers.NewSharedInformerFactoryWithOptions(client, 0, byName(cfg.TargetName))
	sources := informers.NewSharedInformerFactoryWithOptions(client, 0, byName(cfg.Source.Name), informers.WithNamespace(cfg.Source.Namespace))
	c.factories = []informers.SharedInformerFactory{all, copies, sources}

	nsInf, saInf := all.Core().V1().Namespaces(), all.Core().V1().ServiceAccounts()
	copyInf, srcInf := copies.Core().V1().Secrets(), sources.Core().V1().Secrets()
	c.r = &reconciler{
		client: client, cfg: cfg, recorder: recorder, log: log, metrics: m, now: time.Now,
		namespaces: nsInf.Lister(), serviceAccounts: saInf.Lister(), copies: copyInf.Lister(), sources: srcInf.Lister(),
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nsInf.Informer(), c.byNamespaceName()},
		{saInf.Informer(), c.byObjectNamespace()},
		{copyInf.Informer(), c.byObjectNamespace()},
		{srcInf.Informer(), c.everyNamespace()},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("adding an event handler: %w", err)
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	return c, nil
}

// byNamespaceName enqueues a Namespace that was added or changed (its labels may now match).
func (c *Controller) byNamespaceName() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueObjectName(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueObjectName(obj) },
	}
}

// byObjectNamespace enqueues the namespace of a ServiceAccount or copy that was added, changed or deleted.
func (c *Controller) byObjectNamespace() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			return
		}
		if ns, _, err := cache.SplitMetaNamespaceKey(key); err == nil && ns != "" {
			c.queue.Add(ns)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// everyNamespace enqueues all namespaces when the source changes: every copy follows it.
func (c *Controller) everyNamespace() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: func(any, any) { c.enqueueAll() },
		DeleteFunc: func(any) {
			c.log.Warn("source secret deleted: copies are kept as they are", "source", c.cfg.Source.String())
		},
	}
}

func (c *Controller) enqueueObjectName(obj any) {
	if m, err := metaName(obj); err == nil {
		c.queue.Add(m)
	}
}

func metaName(obj any) (string, error) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return "", err
	}
	_, name, err := cache.SplitMetaNamespaceKey(key)
	return name, err
}

func (c *Controller) enqueueAll() {
	list, err := c.r.namespaces.List(labels.Everything())
	if err != nil {
		c.log.Error("listing namespaces from the cache", "err", err)
		return
	}
	for _, ns := range list {
		c.queue.Add(ns.Name)
	}
}

// Start starts the informers and waits until their caches are filled.
func (c *Controller) Start(ctx context.Context) error {
	c.started.Do(func() {
		for _, f := range c.factories {
			f.Start(ctx.Done())
		}
	})
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return errors.New("waiting for the informer caches: stopped before they synced")
	}
	return nil
}

// Synced reports whether every informer has listed once.
func (c *Controller) Synced() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Run reconciles every namespace once, then whatever the events enqueue, until ctx ends. Start must have
// returned first.
func (c *Controller) Run(ctx context.Context) {
	c.r.metrics.leader.Set(1)
	defer c.r.metrics.leader.Set(0)
	c.enqueueAll()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for c.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDownWithDrain()
	wg.Wait()
}

// Shutdown stops the event broadcaster (flushing what it holds) and the queue.
func (c *Controller) Shutdown() {
	c.queue.ShutDown()
	if c.broadcaster != nil {
		c.broadcaster.Shutdown()
	}
	for _, f := range c.factories {
		f.Shutdown()
	}
}

func (c *Controller) next(ctx context.Context) bool {
	ns, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(ns)
	if err := c.r.reconcile(ctx, ns); err != nil {
		c.r.metrics.reconciles.WithLabelValues("error").Inc()
		c.log.Info("reconcile failed, retrying", "namespace", ns, "err", err, "retries", c.queue.NumRequeues(ns))
		c.queue.AddRateLimited(ns)
		return true
	}
	c.r.metrics.reconciles.WithLabelValues("ok").Inc()
	c.queue.Forget(ns)
	return true
}
