// Package apiserverbench measures a Kubernetes API server through client-go,
// the way its clients load it: pod creates from concurrent clients, LISTs of
// many pods (whole, and paged as kubectl and informers page them), and the
// delivery of events to many concurrent watchers.
//
// It drives any API server it has a rest.Config for — kubelab's, started by
// `kubelab bench apiserver` on each store plugin, or an upstream
// kube-apiserver — with the same workload, so figures taken on one machine
// compare fairly. Run does the whole workload; CreatePods, ListPods and
// WatchFanout (or StartFanout and Fanout.Write) are its phases, usable from
// Go benchmarks.
//
// The package only measures: it starts no server and asserts nothing about
// speed.
package apiserverbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Defaults of Config's zero fields: the sizes of the kubelab issue that asked
// for the benchmark.
const (
	// DefaultPods is how many pods the create phase creates and the list
	// phase lists.
	DefaultPods = 10_000
	// DefaultClients is how many concurrent clients create pods.
	DefaultClients = 16
	// DefaultWatchers is how many concurrent watches receive each event.
	DefaultWatchers = 1_000
	// DefaultWatchEvents is how many writes the watchers' latency is
	// measured on (after one unmeasured warm-up write).
	DefaultWatchEvents = 20
	// DefaultLists is how many LISTs of all pods are timed, whole and
	// paged each.
	DefaultLists = 20
	// DefaultPageSize is the limit of the paged LIST: kubectl's and
	// client-go informers' page size.
	DefaultPageSize = 500
	// DefaultQPS and DefaultBurst are each client's client-go rate
	// limit: high enough that client-go never throttles (its own default,
	// 5 QPS with a burst of 10, would make the bench measure the client).
	DefaultQPS   = 10_000
	DefaultBurst = 20_000
	// DefaultWatchTimeout bounds the wait for every watcher to receive one
	// event.
	DefaultWatchTimeout = time.Minute
)

// Labels on the pods the bench creates: LabelKey=LabelCreate on the create
// phase's pods, LabelKey=LabelWatch on the watch phase's writes (the
// watchers select these).
const (
	LabelKey    = "kubelab.dev/bench"
	LabelCreate = "create"
	LabelWatch  = "watch"
)

// Config is the workload. Zero fields take the Default values.
type Config struct {
	// Pods is how many pods are created, then listed.
	Pods int `json:"pods"`
	// Clients is how many clients create pods concurrently; each has its
	// own rest.Config and transport (its own connection), as separate
	// processes would.
	Clients int `json:"clients"`
	// Watchers is how many concurrent watches receive each watch-phase
	// write. They are spread round-robin over the clients' connections
	// (HTTP/2 streams), as many informers in a few processes would be.
	Watchers int `json:"watchers"`
	// WatchEvents is how many writes are timed in the watch phase.
	WatchEvents int `json:"watch_events"`
	// Lists is how many LISTs of all pods are timed, whole and paged.
	Lists int `json:"lists"`
	// PageSize is the limit of the paged LIST.
	PageSize int64 `json:"page_size"`
	// QPS and Burst are each client's client-go rate limit.
	QPS   float32 `json:"qps"`
	Burst int     `json:"burst"`
	// WatchTimeout bounds the wait for all watchers to receive one event.
	WatchTimeout time.Duration `json:"-"`
	// Namespace is where the pods go; "" makes a new one
	// (kubelab-bench-<time>). It is created when missing, with a "default"
	// ServiceAccount (upstream's ServiceAccount admission refuses pods
	// without one when no controller manager runs).
	Namespace string `json:"namespace"`
	// Cleanup deletes the pods and the namespace at the end (for a server
	// that outlives the bench).
	Cleanup bool `json:"-"`
	// Progress, when set, receives a line as each phase ends.
	Progress io.Writer `json:"-"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Pods, DefaultPods)
	def(&c.Clients, DefaultClients)
	def(&c.Watchers, DefaultWatchers)
	def(&c.WatchEvents, DefaultWatchEvents)
	def(&c.Lists, DefaultLists)
	def(&c.Burst, DefaultBurst)
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.QPS == 0 {
		c.QPS = DefaultQPS
	}
	if c.WatchTimeout == 0 {
		c.WatchTimeout = DefaultWatchTimeout
	}
	return c
}

// Validate reports a Config that cannot be run.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"pods", c.Pods}, {"clients", c.Clients}, {"watchers", c.Watchers}, {"watch events", c.WatchEvents}, {"lists", c.Lists}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", f.name, f.v))
		}
	}
	if c.PageSize < 1 {
		errs = append(errs, fmt.Errorf("page size must be at least 1, got %d", c.PageSize))
	}
	return errors.Join(errs...)
}

// Target is an API server to bench.
type Target struct {
	// Name names the server in results ("kubelab", "kube-apiserver").
	Name string `json:"name"`
	// Store says what the server stores into, and where its data lives
	// ("etcd (embedded, data on tmpfs /dev/shm)").
	Store string `json:"store"`
	// Config is a client config for the server, with credentials allowed
	// to create namespaces, service accounts and pods. Run copies it
	// once per client and sets QPS, Burst and its own dialer.
	Config *rest.Config `json:"-"`
}

// Latency summarises a set of durations (nearest-rank percentiles).
type Latency struct {
	// N is how many durations were measured.
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Summarize returns the percentiles of ds (which it sorts).
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{N: len(ds), P50: percentile(ds, 50), P90: percentile(ds, 90), P99: percentile(ds, 99), Max: ds[len(ds)-1]}
}

// percentile is the nearest-rank p-th percentile of the sorted ds.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

// CreateResult is the create phase's outcome.
type CreateResult struct {
	// Pods is how many pods were created (all of them, or Run fails).
	Pods    int `json:"pods"`
	Clients int `json:"clients"`
	// Elapsed is the wall time from the first create sent to the last
	// answered.
	Elapsed time.Duration `json:"elapsed_ns"`
	// PerSecond is Pods / Elapsed.
	PerSecond float64 `json:"per_second"`
	// Latency is each create's, as its client saw it.
	Latency Latency `json:"latency"`
}

// ListResult is the list phase's outcome for one kind of LIST.
type ListResult struct {
	// Items is how many pods each LIST returned (all of them).
	Items int `json:"items"`
	// PageSize is the limit (0: one unpaged LIST).
	PageSize int64 `json:"page_size,omitempty"`
	// Pages is how many requests one LIST of all pods took.
	Pages int `json:"pages"`
	// Latency is that of one LIST of all pods (all its pages).
	Latency Latency `json:"latency"`
	// PageLatency is that of each page's request (paged LIST only).
	PageLatency *Latency `json:"page_latency,omitempty"`
}

// WatchResult is the watch phase's outcome.
type WatchResult struct {
	Watchers int `json:"watchers"`
	// Events is how many writes were timed.
	Events int `json:"events"`
	// Delivered is how many (watcher, timed event) pairs were received:
	// Watchers × Events, or Run fails.
	Delivered int `json:"delivered"`
	// Early is how many deliveries reached their watcher before the write's
	// response reached the writer; their latency counts as 0.
	Early int `json:"early"`
	// Latency is from each write's response to each watcher receiving
	// its event.
	Latency Latency `json:"latency"`
	// FromRequest is from each write's request being sent to each
	// watcher receiving its event (the write's own latency included).
	FromRequest Latency `json:"from_request"`
}

// Result is one Run on one Target.
type Result struct {
	Target Target `json:"target"`
	// ServerVersion is the server's /version gitVersion.
	ServerVersion string `json:"server_version"`
	Config        Config `json:"config"`
	// Machine describes where the bench ran.
	Machine Machine `json:"machine"`
	// Started is when Run began.
	Started time.Time    `json:"started"`
	Create  CreateResult `json:"create"`
	// List is the unpaged LIST of all pods; ListPaged the one with
	// Config.PageSize.
	List      ListResult  `json:"list"`
	ListPaged ListResult  `json:"list_paged"`
	Watch     WatchResult `json:"watch"`
}

// Machine describes the machine a Run ran on.
type Machine struct {
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// LoadAverage is /proc/loadavg's first three fields when Run began.
	LoadAverage string `json:"load_average,omitempty"`
}

// CurrentMachine describes this machine.
func CurrentMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return m
}

// NewClients returns n typed clientsets over copies of cfg, each with its
// own transport (so its own connection): a dialer of its own keeps
// client-go from sharing one cached transport between equal configs. qps and
// burst set each client's rate limit.
func NewClients(cfg *rest.Config, n int, qps float32, burst int) ([]kubernetes.Interface, error) {
	clients := make([]kubernetes.Interface, n)
	for i := range clients {
		c := rest.CopyConfig(cfg)
		c.QPS, c.Burst = qps, burst
		c.UserAgent = fmt.Sprintf("kubelab-bench/client-%d", i)
		if c.Dial == nil {
			c.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		}
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		clients[i] = cs
	}
	return clients, nil
}

// Pod is the pod the bench creates: one container with resource requests
// and a port, labelled LabelKey=label; about the size of a small real pod.
func Pod(name, label string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{LabelKey: label, "app": "bench"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.k8s.io/pause:3.10",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("10m"),
					corev1.ResourceMemory: resource.MustParse("16Mi"),
				}},
			}},
		},
	}
}

// EnsureNamespace creates the namespace ns and its "default" ServiceAccount
// unless they exist.
func EnsureNamespace(ctx context.Context, c kubernetes.Interface, ns string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating service account %s/default: %w", ns, err)
	}
	return nil
}

// CreatePods creates n pods named <prefix>-<i> in ns, the clients sending
// concurrently (each one create at a time, taking the next number when its
// create returns). It stops at the first error and returns it.
func CreatePods(ctx context.Context, clients []kubernetes.Interface, ns, prefix string, n int) (CreateResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	lat := make([][]time.Duration, len(clients))
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range clients {
		lat[ci] = make([]time.Duration, 0, n/len(clients)+1)
		wg.Go(func() {
			pods := c.CoreV1().Pods(ns)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if _, err := pods.Create(ctx, Pod(fmt.Sprintf("%s-%06d", prefix, i), LabelCreate), metav1.CreateOptions{}); err != nil {
					cancel(fmt.Errorf("creating pod %d (client %d): %w", i, ci, err))
					return
				}
				lat[ci] = append(lat[ci], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return CreateResult{}, err
	}
	all := slices.Concat(lat...)
	if len(all) != n {
		return CreateResult{}, fmt.Errorf("created %d pods, want %d", len(all), n)
	}
	return CreateResult{Pods: n, Clients: len(clients), Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(), Latency: Summarize(all)}, nil
}

// ListPods lists all pods in ns runs times
// (after one untimed warm-up LIST), each time all of them: in one request
// when pageSize is 0, else in pages of pageSize following the continue
// token. Every LIST must return want pods.
func ListPods(ctx context.Context, c kubernetes.Interface, ns string, pageSize int64, runs, want int) (ListResult, error) {
	res := ListResult{PageSize: pageSize}
	var whole, pages []time.Duration
	for r := -1; r < runs; r++ {
		opts := metav1.ListOptions{Limit: pageSize}
		items, n := 0, 0
		t0 := time.Now()
		for {
			p0 := time.Now()
			l, err := c.CoreV1().Pods(ns).List(ctx, opts)
			if err != nil {
				return ListResult{}, fmt.Errorf("list (limit %d, page %d): %w", pageSize, n+1, err)
			}
			if r >= 0 {
				pages = append(pages, time.Since(p0))
			}
			items += len(l.Items)
			n++
			if l.Continue == "" {
				break
			}
			if pageSize == 0 {
				return ListResult{}, fmt.Errorf("an unpaged list returned a continue token")
			}
			opts.Continue = l.Continue
		}
		if r >= 0 {
			whole = append(whole, time.Since(t0))
		}
		if items != want {
			return ListResult{}, fmt.Errorf("list (limit %d) returned %d pods, want %d", pageSize, items, want)
		}
		res.Items, res.Pages = items, n
	}
	res.Latency = Summarize(whole)
	if pageSize > 0 {
		pl := Summarize(pages)
		res.PageLatency = &pl
	}
	return res, nil
}

// Fanout is a set of concurrent watches of the pods labelled
// LabelKey=LabelWatch in one namespace, and the writes they receive: Write
// creates one such pod and waits until every watcher has its ADDED event.
// WatchFanout runs a whole fan-out; a Go benchmark may call Write per
// iteration.
type Fanout struct {
	ns, prefix string
	timeout    time.Duration
	cancel     context.CancelFunc
	ws         []watch.Interface
	done       sync.WaitGroup
	// failed receives each watcher's first failure.
	failed chan error

	mu sync.Mutex
	// writes are the writes so far; received[w][k] is when watcher w
	// received write k.
	writes   []*fanoutWrite
	received [][]time.Time
	// err is the first failure; it ends the fan-out.
	err error
}

// fanoutWrite is one write's state.
type fanoutWrite struct {
	sent, responded time.Time
	got             int
	all             chan struct{}
}

// StartFanout opens watchers watches of the pods labelled
// LabelKey=LabelWatch in ns, spread round-robin over clients and starting
// at the current resourceVersion, then makes one untimed warm-up write with
// writer. The watch-phase pods are named <prefix>-<k>; prefix must be new
// in ns. timeout bounds the wait for one write to reach every watcher.
func StartFanout(ctx context.Context, writer kubernetes.Interface, clients []kubernetes.Interface, ns, prefix string, watchers int, timeout time.Duration) (*Fanout, error) {
	selector := LabelKey + "=" + LabelWatch
	// Watch from the current revision: a watch without a resourceVersion
	// would start with the existing objects as synthetic ADDED events.
	l, err := writer.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("list for the watch's resourceVersion: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	f := &Fanout{ns: ns, prefix: prefix, timeout: timeout, cancel: cancel, ws: make([]watch.Interface, watchers),
		failed: make(chan error, watchers), received: make([][]time.Time, watchers)}
	// Open the watches concurrently (as many independent clients would),
	// at most 64 at a time.
	var open sync.WaitGroup
	sem := make(chan struct{}, 64)
	openErr := make([]error, watchers)
	for wi := range watchers {
		open.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			w, err := clients[wi%len(clients)].CoreV1().Pods(ns).Watch(wctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: l.ResourceVersion})
			if err != nil {
				openErr[wi] = fmt.Errorf("watcher %d: %w", wi, err)
				return
			}
			f.ws[wi] = w
		})
	}
	open.Wait()
	if err := errors.Join(openErr...); err != nil {
		f.Stop()
		return nil, err
	}
	for wi, w := range f.ws {
		f.done.Go(func() { f.receive(wctx, wi, w) })
	}
	if err := f.Write(ctx, writer); err != nil {
		f.Stop()
		return nil, fmt.Errorf("warm-up write: %w", err)
	}
	return f, nil
}

// name is the name of write k's pod.
func (f *Fanout) name(k int) string { return fmt.Sprintf("%s-%06d", f.prefix, k) }

// receive records watcher wi's events until its watch ends.
func (f *Fanout) receive(ctx context.Context, wi int, w watch.Interface) {
	seen := 0
	for ev := range w.ResultChan() {
		now := time.Now()
		p, ok := ev.Object.(*corev1.Pod)
		if ev.Type != watch.Added || !ok {
			f.failed <- fmt.Errorf("watcher %d: unexpected %s event %T %v", wi, ev.Type, ev.Object, ev.Object)
			return
		}
		f.mu.Lock()
		if seen >= len(f.writes) || p.Name != f.name(seen) {
			f.mu.Unlock()
			f.failed <- fmt.Errorf("watcher %d: got pod %s as event %d", wi, p.Name, seen)
			return
		}
		f.received[wi] = append(f.received[wi], now)
		wr := f.writes[seen]
		wr.got++
		if wr.got == len(f.ws) {
			close(wr.all)
		}
		f.mu.Unlock()
		seen++
	}
	if ctx.Err() == nil {
		f.failed <- fmt.Errorf("watcher %d: watch ended after %d events", wi, seen)
	}
}

// Write creates the next watch-phase pod with writer and waits until every
// watcher has received it, a watcher fails, or the timeout passes.
func (f *Fanout) Write(ctx context.Context, writer kubernetes.Interface) error {
	if f.err != nil {
		return f.err
	}
	wr := &fanoutWrite{all: make(chan struct{})}
	f.mu.Lock()
	k := len(f.writes)
	f.writes = append(f.writes, wr)
	f.mu.Unlock()
	sent := time.Now()
	_, err := writer.CoreV1().Pods(f.ns).Create(ctx, Pod(f.name(k), LabelWatch), metav1.CreateOptions{})
	now := time.Now()
	if err != nil {
		f.err = fmt.Errorf("watch write %d: %w", k, err)
		return f.err
	}
	f.mu.Lock()
	wr.sent, wr.responded = sent, now
	f.mu.Unlock()
	select {
	case <-wr.all:
		return nil
	case err := <-f.failed:
		f.err = err
	case <-time.After(f.timeout):
		f.mu.Lock()
		got := wr.got
		f.mu.Unlock()
		f.err = fmt.Errorf("watch write %d: %d of %d watchers received it within %v", k, got, len(f.ws), f.timeout)
	case <-ctx.Done():
		f.err = ctx.Err()
	}
	return f.err
}

// Stop ends the watches and returns the delivery latencies of the writes
// after the warm-up, or the first failure.
func (f *Fanout) Stop() (WatchResult, error) {
	f.cancel()
	for _, w := range f.ws {
		if w != nil {
			w.Stop()
		}
	}
	f.done.Wait()
	if f.err != nil {
		return WatchResult{}, f.err
	}
	res := WatchResult{Watchers: len(f.ws), Events: max(len(f.writes)-1, 0)}
	ds := make([]time.Duration, 0, res.Watchers*res.Events)
	fromSent := make([]time.Duration, 0, res.Watchers*res.Events)
	for wi := range f.ws {
		if len(f.received[wi]) != len(f.writes) {
			return WatchResult{}, fmt.Errorf("watcher %d received %d of %d writes", wi, len(f.received[wi]), len(f.writes))
		}
		for k := 1; k < len(f.writes); k++ {
			fromSent = append(fromSent, f.received[wi][k].Sub(f.writes[k].sent))
			d := f.received[wi][k].Sub(f.writes[k].responded)
			if d < 0 {
				res.Early++
				d = 0
			}
			ds = append(ds, d)
		}
	}
	res.Delivered = len(ds)
	res.Latency = Summarize(ds)
	res.FromRequest = Summarize(fromSent)
	return res, nil
}

// WatchFanout measures event delivery to many watchers: it opens watchers
// watches (StartFanout), creates events pods one at a time with writer,
// each after the previous one reached every watcher, and measures the time
// from each create's response to each watcher's receipt of its ADDED
// event.
func WatchFanout(ctx context.Context, writer kubernetes.Interface, clients []kubernetes.Interface, ns, prefix string, watchers, events int, timeout time.Duration) (WatchResult, error) {
	f, err := StartFanout(ctx, writer, clients, ns, prefix, watchers, timeout)
	if err != nil {
		return WatchResult{}, err
	}
	for range events {
		if err := f.Write(ctx, writer); err != nil {
			break
		}
	}
	return f.Stop()
}

// Run runs the whole workload on t: it creates cfg.Pods pods from
// cfg.Clients clients, LISTs them cfg.Lists times whole and paged, then
// times cfg.WatchEvents writes delivered to cfg.Watchers watchers. Any
// failed request fails the Run: every pod must be created and listed and
// every watcher must receive every event.
func Run(ctx context.Context, t Target, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if t.Config == nil {
		return nil, fmt.Errorf("target %q has no client config", t.Name)
	}
	res := &Result{Target: t, Machine: CurrentMachine(), Started: time.Now()}
	if cfg.Namespace == "" {
		cfg.Namespace = fmt.Sprintf("kubelab-bench-%d", res.Started.UnixNano())
	}
	res.Config = cfg
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			_, _ = fmt.Fprintf(cfg.Progress, "%s: "+format+"\n", append([]any{t.Name + " " + t.Store}, args...)...)
		}
	}
	clients, err := NewClients(t.Config, cfg.Clients, cfg.QPS, cfg.Burst)
	if err != nil {
		return nil, err
	}
	v, err := clients[0].Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	res.ServerVersion = v.GitVersion
	if err := EnsureNamespace(ctx, clients[0], cfg.Namespace); err != nil {
		return nil, err
	}
	if cfg.Cleanup {
		defer cleanup(clients[0], cfg.Namespace)
	}
	if res.Create, err = CreatePods(ctx, clients, cfg.Namespace, "pod", cfg.Pods); err != nil {
		return nil, err
	}
	progress("created %d pods in %v (%.0f/s)", res.Create.Pods, res.Create.Elapsed.Round(time.Millisecond), res.Create.PerSecond)
	if res.List, err = ListPods(ctx, clients[0], cfg.Namespace, 0, cfg.Lists, cfg.Pods); err != nil {
		return nil, err
	}
	if res.ListPaged, err = ListPods(ctx, clients[0], cfg.Namespace, cfg.PageSize, cfg.Lists, cfg.Pods); err != nil {
		return nil, err
	}
	progress("listed %d pods %d times (p99 %v unpaged, %v in pages of %d)", cfg.Pods, cfg.Lists, round(res.List.Latency.P99), round(res.ListPaged.Latency.P99), cfg.PageSize)
	if res.Watch, err = WatchFanout(ctx, clients[0], clients, cfg.Namespace, "watch", cfg.Watchers, cfg.WatchEvents, cfg.WatchTimeout); err != nil {
		return nil, err
	}
	progress("%d writes delivered to %d watchers (p99 %v)", res.Watch.Events, res.Watch.Watchers, round(res.Watch.Latency.P99))
	return res, nil
}

// round rounds d for the progress lines.
func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

// cleanup deletes the bench's pods and namespace, best effort (a server
// without a namespace controller keeps the namespace Terminating).
func cleanup(c kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_ = c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}
