package scheduler

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kubelab/kubelab/spec"
)

// metrics are the scheduler's Prometheus metrics, named as the
// kube-scheduler's (and so as scheduler_perf reads them). Each Scheduler
// has its own registry, so several can run in one process.
type metrics struct {
	registry *prometheus.Registry

	scheduleAttempts         *prometheus.CounterVec
	attemptDuration          *prometheus.HistogramVec
	algorithmDuration        prometheus.Histogram
	podSchedulingDuration    *prometheus.HistogramVec
	podSchedulingSLIDuration *prometheus.HistogramVec
	podSchedulingAttempts    prometheus.Histogram
	extensionPointDuration   *prometheus.HistogramVec
	pluginDuration           *prometheus.HistogramVec
	pluginObservers          sync.Map // pluginKey → prometheus.Observer
	pendingPods              *prometheus.GaugeVec
	pending                  [4]prometheus.Gauge // active, backoff, unschedulable, gated
	queueIncomingPods        *prometheus.CounterVec
	bindingDuration          prometheus.Histogram
	preemptionAttempts       prometheus.Counter
	preemptionVictims        prometheus.Histogram
	extenderErrors           *prometheus.CounterVec
	cacheSize                *prometheus.GaugeVec
}

func newMetrics() *metrics {
	r := prometheus.NewRegistry()
	sub := "scheduler"
	m := &metrics{
		registry: r,
		scheduleAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: sub, Name: "schedule_attempts_total",
			Help: "Number of attempts to schedule pods, by the result: 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem."},
			[]string{"result", "profile"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "scheduling_attempt_duration_seconds",
			Help:    "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"result", "profile"}),
		algorithmDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: sub, Name: "scheduling_algorithm_duration_seconds",
			Help: "Scheduling algorithm latency in seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		podSchedulingDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "pod_scheduling_duration_seconds",
			Help:    "E2e latency for a pod being scheduled which may include multiple scheduling attempts.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 20)}, []string{"attempts"}),
		podSchedulingSLIDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "pod_scheduling_sli_duration_seconds",
			Help:    "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 20)}, []string{"attempts"}),
		podSchedulingAttempts: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: sub, Name: "pod_scheduling_attempts",
			Help: "Number of attempts to successfully schedule a pod.", Buckets: prometheus.ExponentialBuckets(1, 2, 5)}),
		extensionPointDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "framework_extension_point_duration_seconds",
			Help:    "Latency for running all plugins of a specific extension point.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 12)}, []string{"extension_point", "status", "profile"}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Subsystem: sub, Name: "plugin_execution_duration_seconds",
			Help:    "Duration for running a plugin at a specific extension point (sampled: one scheduling cycle in ten).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 1.5, 20)}, []string{"plugin", "extension_point", "status"}),
		pendingPods: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: "pending_pods",
			Help: "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods; 'gated' means number of gated pods."},
			[]string{"queue"}),
		queueIncomingPods: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: sub, Name: "queue_incoming_pods_total",
			Help: "Number of pods added to scheduling queues by event and queue type."}, []string{"queue", "event"}),
		bindingDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: sub, Name: "binding_duration_seconds",
			Help: "Binding latency in seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		preemptionAttempts: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: sub, Name: "preemption_attempts_total",
			Help: "Total preemption attempts in the cluster till now"}),
		preemptionVictims: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: sub, Name: "preemption_victims",
			Help: "Number of selected preemption victims", Buckets: prometheus.ExponentialBuckets(1, 2, 7)}),
		extenderErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: "kubelab_scheduler", Name: "extender_errors_total",
			Help: "Number of failed scheduler extender calls, by extender and verb."}, []string{"extender", "verb", "ignored"}),
		cacheSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: sub, Name: "cache_size",
			Help: "Number of nodes, pods, and assumed (bound) pods in the scheduler cache."}, []string{"type"}),
	}
	r.MustRegister(m.scheduleAttempts, m.attemptDuration, m.algorithmDuration, m.podSchedulingDuration,
		m.podSchedulingSLIDuration, m.podSchedulingAttempts, m.extensionPointDuration, m.pluginDuration,
		m.pendingPods, m.queueIncomingPods, m.bindingDuration, m.preemptionAttempts, m.preemptionVictims,
		m.extenderErrors, m.cacheSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for i, q := range []string{"active", "backoff", "unschedulable", "gated"} {
		m.pending[i] = m.pendingPods.WithLabelValues(q)
	}
	return m
}

// pluginKey labels one plugin duration series.
type pluginKey struct {
	plugin, point string
	code          spec.Code
}

// pluginObserver returns the plugin duration series, cached: Filter and
// Score observe once per node in sampled cycles.
func (m *metrics) pluginObserver(plugin, point string, code spec.Code) prometheus.Observer {
	k := pluginKey{plugin, point, code}
	if o, ok := m.pluginObservers.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o := m.pluginDuration.WithLabelValues(plugin, point, code.String())
	m.pluginObservers.Store(k, o)
	return o
}

func (m *metrics) setQueue(d queueDepths) {
	m.pending[0].Set(float64(d.active))
	m.pending[1].Set(float64(d.backoff))
	m.pending[2].Set(float64(d.unschedulable))
	m.pending[3].Set(float64(d.gated))
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
