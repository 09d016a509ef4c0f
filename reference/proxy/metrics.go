package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the proxy loop's Prometheus metrics, named as upstream
// kube-proxy's where one exists (subsystem "kubeproxy"). Each Runner has
// its own registry.
type metrics struct {
	registry *prometheus.Registry

	syncDuration    prometheus.Histogram
	lastSync        prometheus.Gauge
	lastQueued      prometheus.Gauge
	serviceChanges  prometheus.Counter
	endpointChanges prometheus.Counter
	syncFailures    prometheus.Counter
	partialSyncs    prometheus.Counter
	skipped         prometheus.Gauge
}

func newMetrics() *metrics {
	sub := "kubeproxy"
	m := &metrics{
		registry: prometheus.NewRegistry(),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: sub, Name: "sync_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: sub, Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced"}),
		lastQueued: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: sub, Name: "sync_proxy_rules_last_queued_timestamp_seconds",
			Help: "The last time a sync of proxy rules was queued"}),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: sub, Name: "sync_proxy_rules_service_changes_total",
			Help: "Cumulative proxy rules Service changes"}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: sub, Name: "sync_proxy_rules_endpoint_changes_total",
			Help: "Cumulative proxy rules Endpoint changes"}),
		// The three below are kubelab's own: upstream's failure counters
		// are per mode (iptables restore, nftables sync).
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: sub, Name: "sync_proxy_rules_failures_total",
			Help: "Syncs the proxy plugin failed (the previous rules stayed in place)"}),
		partialSyncs: prometheus.NewCounter(prometheus.CounterOpts{Subsystem: sub, Name: "sync_proxy_rules_partial_total",
			Help: "Syncs in which the plugin skipped what it cannot program (spec.ErrUnsupported)"}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: sub, Name: "sync_proxy_rules_skipped_services",
			Help: "Services left out of the last sync because they cannot be expressed"}),
	}
	m.registry.MustRegister(m.syncDuration, m.lastSync, m.lastQueued, m.serviceChanges, m.endpointChanges,
		m.syncFailures, m.partialSyncs, m.skipped)
	return m
}
