// Package schedbench is the engine of `kubelab bench scheduler`: it runs
// scheduler workloads in the shape of upstream scheduler_perf (described
// in a YAML file, workloads.yaml by default) against scheduler targets —
// kubelab's scheduler with a profile or an extender, any scheduler binary
// (the upstream kube-scheduler), or a scheduler process already running —
// each on a fresh API server, and reports throughput, latency and
// placement quality measured only through the API.
package schedbench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// DefaultWorkloads is the embedded workloads.yaml.
//
//go:embed workloads.yaml
var DefaultWorkloads []byte

// File is a workloads file.
type File struct {
	Workloads []Workload `json:"workloads"`
}

// Workload is one benchmark scenario.
type Workload struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Nodes       NodeSpec  `json:"nodes"`
	InitPods    *InitPods `json:"initPods,omitempty"`
	Pods        PodSpec   `json:"pods"`
	Churn       *Churn    `json:"churn,omitempty"`
}

// NodeSpec describes the nodes.
type NodeSpec struct {
	Count     int    `json:"count"`
	FullCount int    `json:"fullCount,omitempty"`
	CPU       string `json:"cpu"`
	Memory    string `json:"memory"`
	Pods      int    `json:"pods"`
	Zones     int    `json:"zones,omitempty"`
}

// InitPods are bound by the bench before the scheduler starts.
type InitPods struct {
	PerNode  int    `json:"perNode"`
	CPU      string `json:"cpu"`
	Memory   string `json:"memory"`
	Priority int32  `json:"priority,omitempty"`
}

// PodSpec describes the measured pods.
type PodSpec struct {
	Count         int    `json:"count"`
	FullCount     int    `json:"fullCount,omitempty"`
	CPU           string `json:"cpu"`
	Memory        string `json:"memory"`
	Priority      int32  `json:"priority,omitempty"`
	SpreadMaxSkew int32  `json:"spreadMaxSkew,omitempty"`
	AntiAffinity  bool   `json:"antiAffinity,omitempty"`
}

// Churn deletes and adds nodes while the pods are scheduled.
type Churn struct {
	DeleteNodes int `json:"deleteNodes"`
	IntervalMs  int `json:"intervalMs"`
}

// Load parses a workloads file (YAML or JSON) strictly.
func Load(data []byte) (*File, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("workloads: %w", err)
	}
	if len(f.Workloads) == 0 {
		return nil, fmt.Errorf("workloads: none defined")
	}
	for _, w := range f.Workloads {
		if w.Name == "" || w.Nodes.Count <= 0 || w.Pods.Count <= 0 {
			return nil, fmt.Errorf("workload %q: needs a name, nodes.count > 0 and pods.count > 0", w.Name)
		}
		for _, q := range []string{w.Nodes.CPU, w.Nodes.Memory, w.Pods.CPU, w.Pods.Memory} {
			if _, err := resource.ParseQuantity(q); err != nil {
				return nil, fmt.Errorf("workload %q: quantity %q: %w", w.Name, q, err)
			}
		}
	}
	return &f, nil
}

// Target kinds.
const (
	KindProfile  = "profile"  // kubelab scheduler --profile NAME
	KindExtender = "extender" // kubelab scheduler, default profile + extender at URL
	KindBinary   = "binary"   // a scheduler binary with kube-scheduler's flags
	KindExternal = "external" // a scheduler process already running
)

// Target is a scheduler to bench.
type Target struct {
	Label string `json:"label"`
	Kind  string `json:"kind"`
	// Value is the profile, the extender URL, the binary's path or the
	// external scheduler's name.
	Value string `json:"value"`
}

// ParseTarget parses --target: "PROFILE", "extender=URL", "name=NAME",
// or "LABEL=/path/to/binary" (a kube-scheduler-like binary).
func ParseTarget(s string) (Target, error) {
	k, v, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return Target{Label: s, Kind: KindProfile, Value: s}, nil
	case k == "extender":
		return Target{Label: "default-scheduler+extender", Kind: KindExtender, Value: v}, nil
	case k == "name":
		return Target{Label: "external:" + v, Kind: KindExternal, Value: v}, nil
	}
	if st, err := os.Stat(v); err != nil || st.IsDir() {
		return Target{}, fmt.Errorf("target %q: %q is not a scheduler binary (want PROFILE, extender=URL, name=NAME or LABEL=/path/to/kube-scheduler)", s, v)
	}
	return Target{Label: k, Kind: KindBinary, Value: v}, nil
}

// schedulerName is the schedulerName the target's pods ask for.
func (t Target) schedulerName() string {
	switch t.Kind {
	case KindProfile:
		if !strings.HasSuffix(t.Value, "-scheduler") {
			return t.Value + "-scheduler"
		}
		return t.Value
	case KindExternal:
		return t.Value
	}
	return "default-scheduler"
}

// Options configure a run.
type Options struct {
	// Exe is the kubelab binary (for profile and extender targets).
	Exe string
	// StartAPIServer starts a fresh API server and returns its kubeconfig
	// file and a stop function. With Kubeconfig set it is not used.
	StartAPIServer func(ctx context.Context) (kubeconfig string, stop func(), err error)
	// Kubeconfig, when set, is an API server of the user's, used by every
	// run (objects are cleaned up between runs).
	Kubeconfig string
	// QPS is the client QPS given to the schedulers (burst 2×).
	QPS float32
	// Full uses the workloads' full sizes.
	Full bool
	// Timeout bounds each run's wait for the pods to be bound.
	Timeout time.Duration
	// Progress receives progress lines.
	Progress io.Writer
}

// Result is one workload run against one target.
type Result struct {
	Workload string  `json:"workload"`
	Target   Target  `json:"target"`
	QPS      float32 `json:"schedulerClientQPS"`
	Nodes    int     `json:"nodes"`
	Pods     int     `json:"pods"`
	Bound    int     `json:"bound"`
	// Seconds is the time from the first bind to the last.
	Seconds float64 `json:"seconds"`
	// Throughput: the average over the run and percentiles of the binds
	// counted in each one-second window (as scheduler_perf samples).
	AvgPodsPerSec float64 `json:"avgPodsPerSec"`
	P50PodsPerSec float64 `json:"p50PodsPerSec"`
	P90PodsPerSec float64 `json:"p90PodsPerSec"`
	P99PodsPerSec float64 `json:"p99PodsPerSec"`
	// Latency of each pod from the moment the scheduler could see it (its
	// creation, or the scheduler's start if later) to its bind as seen
	// through a watch, in milliseconds.
	LatencyP50Ms float64 `json:"latencyP50Ms"`
	LatencyP90Ms float64 `json:"latencyP90Ms"`
	LatencyP99Ms float64 `json:"latencyP99Ms"`
	// Quality.
	OvercommittedNodes int `json:"overcommittedNodes"`
	ZoneSkew           int `json:"zoneSkew"`
	AntiAffinityViol   int `json:"antiAffinityViolations"`
	Preempted          int `json:"preemptedInitPods"`
	// Terminating counts pods left with a deletionTimestamp.
	Terminating int `json:"terminatingPods"`
	// OvercommitDetail names the first overcommitted nodes and their pods.
	OvercommitDetail []string `json:"overcommitDetail,omitempty"`
	CPUUtilMinPct    float64  `json:"cpuUtilMinPct"`
	CPUUtilMeanPct   float64  `json:"cpuUtilMeanPct"`
	CPUUtilMaxPct    float64  `json:"cpuUtilMaxPct"`
	Error            string   `json:"error,omitempty"`
}

const (
	zoneLabel     = "topology.kubernetes.io/zone"
	hostnameLabel = "kubernetes.io/hostname"
	benchNS       = "bench"
	initNS        = "bench-init"
	appLabel      = "bench.kubelab.io/app"
)

func (o *Options) logf(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

// Run runs every workload against every target, in that order.
func Run(ctx context.Context, f *File, targets []Target, opts Options) ([]*Result, error) {
	if opts.QPS <= 0 {
		opts.QPS = 1000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	var out []*Result
	for _, w := range f.Workloads {
		for _, t := range targets {
			opts.logf("bench scheduler: workload %s, target %s", w.Name, t.Label)
			r, err := runOne(ctx, w, t, opts)
			if err != nil {
				if r == nil {
					r = &Result{Workload: w.Name, Target: t, QPS: opts.QPS}
				}
				r.Error = err.Error()
				opts.logf("  error: %v", err)
			}
			out = append(out, r)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
	}
	return out, nil
}

// runOne runs workload w against target t: it connects to (or starts) the
// API server, builds the cluster (namespaces, priority classes, nodes, init
// pods), creates the measured pods and lets the scheduler bind them while
// a watch records each bind, then measures throughput, latency and
// placement quality. The cluster is cleaned up afterwards.
func runOne(ctx context.Context, w Workload, t Target, opts Options) (*Result, error) {
	kubeconfig, cs, stopAPI, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer stopAPI()
	nNodes, nPods := sizes(w, opts)
	r := &Result{Workload: w.Name, Target: t, QPS: opts.QPS, Nodes: nNodes, Pods: nPods}
	defer cleanup(context.WithoutCancel(ctx), cs, opts.Kubeconfig != "")
	pcs, err := buildCluster(ctx, cs, w, t, nNodes, opts)
	if err != nil {
		return r, err
	}
	rec := newBindRecorder(nPods)
	stopRec, err := rec.start(ctx, cs)
	if err != nil {
		return r, err
	}
	defer stopRec()
	created, schedStart, stopSched, err := createPodsAndStartScheduler(ctx, cs, w, t, pcs, nPods, kubeconfig, opts)
	if err != nil {
		return r, err
	}
	defer stopSched()
	churnDone := churn(ctx, cs, w, nNodes, rec.allBound)
	select {
	case <-rec.allBound:
	case <-time.After(opts.Timeout):
		opts.logf("  timed out waiting for binds")
	case <-ctx.Done():
	}
	<-churnDone
	stopRec()

	times, lat := rec.measure(created, schedStart)
	r.Bound = len(times)
	setThroughput(r, times)
	r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if err := quality(ctx, cs, w, nNodes, r); err != nil {
		return r, err
	}
	if r.Bound < nPods {
		return r, fmt.Errorf("%d of %d pods bound", r.Bound, nPods)
	}
	return r, nil
}

// connect returns a client of the API server at opts.Kubeconfig, or of
// one it starts (stop stops it; a no-op otherwise).
func connect(ctx context.Context, opts Options) (kubeconfig string, cs kubernetes.Interface, stop func(), err error) {
	kubeconfig, stop = opts.Kubeconfig, func() {}
	if kubeconfig == "" {
		kc, stopAPI, err := opts.StartAPIServer(ctx)
		if err != nil {
			return "", nil, nil, err
		}
		kubeconfig, stop = kc, stopAPI
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		stop()
		return "", nil, nil, err
	}
	rc.QPS, rc.Burst = 10000, 20000
	cs, err = kubernetes.NewForConfig(rc)
	if err != nil {
		stop()
		return "", nil, nil, err
	}
	return kubeconfig, cs, stop, nil
}

// sizes is the workload's node and pod counts (the full ones with
// opts.Full, where set).
func sizes(w Workload, opts Options) (nNodes, nPods int) {
	nNodes, nPods = w.Nodes.Count, w.Pods.Count
	if opts.Full {
		if w.Nodes.FullCount > 0 {
			nNodes = w.Nodes.FullCount
		}
		if w.Pods.FullCount > 0 {
			nPods = w.Pods.FullCount
		}
	}
	return nNodes, nPods
}

// buildCluster creates the namespaces (with their default service
// accounts), the priority classes the workload's pods use, the nodes and
// the init pods (bound directly, round-robin over the nodes). It returns
// the priority class name for each priority.
func buildCluster(ctx context.Context, cs kubernetes.Interface, w Workload, t Target, nNodes int, opts Options) (map[int32]string, error) {
	for _, ns := range []string{benchNS, initNS} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			return nil, err
		}
	}
	pcs := map[int32]string{}
	for _, p := range []int32{w.Pods.Priority, initPriority(w)} {
		if p == 0 || pcs[p] != "" {
			continue
		}
		name := fmt.Sprintf("bench-%d", p)
		if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, priorityClass(name, p), metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		pcs[p] = name
	}
	opts.logf("  %d nodes", nNodes)
	if err := parallel(ctx, nNodes, func(i int) error {
		_, err := cs.CoreV1().Nodes().Create(ctx, node(w.Nodes, i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("creating nodes: %w", err)
	}
	if ip := w.InitPods; ip != nil && ip.PerNode > 0 {
		opts.logf("  %d init pods", nNodes*ip.PerNode)
		if err := parallel(ctx, nNodes*ip.PerNode, func(i int) error {
			p := pod(initNS, fmt.Sprintf("init-%06d", i), t.schedulerName(), ip.CPU, ip.Memory, ip.Priority, pcs[ip.Priority])
			p.Spec.NodeName = nodeName(i % nNodes)
			_, err := cs.CoreV1().Pods(initNS).Create(ctx, p, metav1.CreateOptions{})
			return err
		}); err != nil {
			return nil, fmt.Errorf("creating init pods: %w", err)
		}
	}
	return pcs, nil
}

// bindRecorder records when each measured pod is first seen bound,
// through an informer on the measured namespace; allBound is closed when
// all nPods are.
type bindRecorder struct {
	nPods    int
	allBound chan struct{}

	mu    sync.Mutex // guards binds
	binds map[string]time.Time
}

func newBindRecorder(nPods int) *bindRecorder {
	return &bindRecorder{nPods: nPods, allBound: make(chan struct{}), binds: map[string]time.Time{}}
}

func (b *bindRecorder) record(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.binds[p.Name]; !seen {
		b.binds[p.Name] = time.Now()
		if len(b.binds) == b.nPods {
			close(b.allBound)
		}
	}
}

// start starts the informer and waits for its cache; stop (idempotent)
// stops it.
func (b *bindRecorder) start(ctx context.Context, cs kubernetes.Interface) (stop func(), err error) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(benchNS))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: b.record, UpdateFunc: func(_, n any) { b.record(n) }}); err != nil {
		return nil, err
	}
	ictx, cancel := context.WithCancel(ctx)
	factory.Start(ictx.Done())
	factory.WaitForCacheSync(ictx.Done())
	return cancel, nil
}

// measure returns the bind times of the measured pods that were bound and
// their latencies in milliseconds (from creation, or from schedStart when
// the pod was created before the scheduler started), both sorted.
func (b *bindRecorder) measure(created []time.Time, schedStart time.Time) (times []time.Time, lat []float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.nPods {
		bound, ok := b.binds[podName(i)]
		if !ok {
			continue
		}
		times = append(times, bound)
		from := created[i]
		if schedStart.After(from) {
			from = schedStart
		}
		lat = append(lat, float64(bound.Sub(from).Microseconds())/1000)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	sort.Float64s(lat)
	return times, lat
}

// measuredPod is the workload's i-th measured pod.
func measuredPod(w Workload, t Target, pcs map[int32]string, i int) *corev1.Pod {
	p := pod(benchNS, podName(i), t.schedulerName(), w.Pods.CPU, w.Pods.Memory, w.Pods.Priority, pcs[w.Pods.Priority])
	if w.Pods.SpreadMaxSkew > 0 {
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: w.Pods.SpreadMaxSkew, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appLabel: "bench"}},
		}}
	}
	if w.Pods.AntiAffinity {
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appLabel: "bench"}},
				TopologyKey:   hostnameLabel,
			}},
		}}
	}
	return p
}

// createPodsAndStartScheduler creates the measured pods, noting each
// creation time. An external scheduler is already running, so the clock
// starts before the pods are created; a scheduler this tool runs is
// started after they all exist (stop stops it), and the clock starts then.
func createPodsAndStartScheduler(ctx context.Context, cs kubernetes.Interface, w Workload, t Target, pcs map[int32]string, nPods int,
	kubeconfig string, opts Options) (created []time.Time, schedStart time.Time, stop func(), err error) {
	created = make([]time.Time, nPods)
	createPods := func() error {
		return parallel(ctx, nPods, func(i int) error {
			_, err := cs.CoreV1().Pods(benchNS).Create(ctx, measuredPod(w, t, pcs, i), metav1.CreateOptions{})
			created[i] = time.Now()
			return err
		})
	}
	if t.Kind == KindExternal {
		schedStart = time.Now()
		opts.logf("  creating %d pods for the running scheduler %s", nPods, t.Value)
		return created, schedStart, func() {}, createPods()
	}
	opts.logf("  creating %d pods, then starting the scheduler", nPods)
	if err := createPods(); err != nil {
		return nil, time.Time{}, nil, err
	}
	stop, err = startScheduler(t, kubeconfig, opts)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	return created, time.Now(), stop, nil
}

// churn deletes up to w.Churn.DeleteNodes nodes (spread over the node
// list) and adds as many new ones, one of each every IntervalMs, until
// allBound closes; the returned channel closes when it is done.
func churn(ctx context.Context, cs kubernetes.Interface, w Workload, nNodes int, allBound <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if w.Churn == nil {
			return
		}
		for i := 0; i < w.Churn.DeleteNodes && i < nNodes; i++ {
			select {
			case <-allBound:
				return
			case <-time.After(time.Duration(w.Churn.IntervalMs) * time.Millisecond):
			}
			_ = cs.CoreV1().Nodes().Delete(ctx, nodeName(i*nNodes/max(1, w.Churn.DeleteNodes)), metav1.DeleteOptions{})
			_, _ = cs.CoreV1().Nodes().Create(ctx, node(w.Nodes, nNodes+i), metav1.CreateOptions{})
		}
	}()
	return done
}

// setThroughput fills r's throughput figures from the sorted bind times:
// the average over the span from the first bind to the last, and the
// percentiles of the binds counted in each one-second window.
func setThroughput(r *Result, times []time.Time) {
	if len(times) < 2 {
		return
	}
	span := times[len(times)-1].Sub(times[0])
	r.Seconds = span.Seconds()
	if span > 0 {
		r.AvgPodsPerSec = float64(len(times)-1) / span.Seconds()
	}
	var windows []float64
	start := times[0]
	count := 0
	for _, tm := range times {
		for tm.Sub(start) >= time.Second {
			windows = append(windows, float64(count))
			count = 0
			start = start.Add(time.Second)
		}
		count++
	}
	if len(windows) == 0 {
		windows = []float64{r.AvgPodsPerSec}
	}
	sort.Float64s(windows)
	r.P50PodsPerSec, r.P90PodsPerSec, r.P99PodsPerSec = pct(windows, 50), pct(windows, 90), pct(windows, 99)
}

func initPriority(w Workload) int32 {
	if w.InitPods == nil {
		return 0
	}
	return w.InitPods.Priority
}

// pct is the p-th percentile of sorted xs (nearest rank).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// quality fills the placement figures of r from the API.
func quality(ctx context.Context, cs kubernetes.Interface, w Workload, nNodes int, r *Result) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: appLabel + "=bench"})
	if err != nil {
		return err
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	byNode := map[string][]*corev1.Pod{}
	measured := map[string]int{}
	inits := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Namespace == initNS {
			inits++
		}
		if p.DeletionTimestamp != nil {
			r.Terminating++
		}
		if p.Spec.NodeName == "" {
			continue
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		if p.Namespace == benchNS {
			measured[p.Spec.NodeName]++
		}
	}
	if w.InitPods != nil {
		r.Preempted = nNodes*w.InitPods.PerNode - inits
	}
	zones := map[string]int{}
	r.CPUUtilMinPct = 100
	var sum float64
	for _, n := range nodes.Items {
		used := corev1.ResourceList{}
		for _, p := range byNode[n.Name] {
			for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
				s := used[name]
				s.Add(q)
				used[name] = s
			}
		}
		over := len(byNode[n.Name]) > int(n.Status.Allocatable.Pods().Value())
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			q, a := used[name], n.Status.Allocatable[name]
			if q.Cmp(a) > 0 {
				over = true
			}
		}
		if over {
			r.OvercommittedNodes++
			if len(r.OvercommitDetail) < 5 {
				var names []string
				for _, p := range byNode[n.Name] {
					names = append(names, fmt.Sprintf("%s/%s(node=%s,deleting=%v)", p.Namespace, p.Name, p.Spec.NodeName, p.DeletionTimestamp != nil))
				}
				r.OvercommitDetail = append(r.OvercommitDetail, n.Name+": "+strings.Join(names, " "))
			}
		}
		cpu, alloc := used[corev1.ResourceCPU], n.Status.Allocatable[corev1.ResourceCPU]
		u := 0.0
		if alloc.MilliValue() > 0 {
			u = 100 * float64(cpu.MilliValue()) / float64(alloc.MilliValue())
		}
		r.CPUUtilMinPct, r.CPUUtilMaxPct = min(r.CPUUtilMinPct, u), max(r.CPUUtilMaxPct, u)
		sum += u
		if w.Nodes.Zones > 0 {
			zones[n.Labels[zoneLabel]] += measured[n.Name]
		}
		if w.Pods.AntiAffinity && measured[n.Name] > 1 {
			r.AntiAffinityViol += measured[n.Name] - 1
		}
	}
	if len(nodes.Items) > 0 {
		r.CPUUtilMeanPct = sum / float64(len(nodes.Items))
	} else {
		r.CPUUtilMinPct = 0
	}
	if len(zones) > 0 {
		lo, hi := -1, 0
		for _, c := range zones {
			if lo < 0 || c < lo {
				lo = c
			}
			hi = max(hi, c)
		}
		r.ZoneSkew = hi - lo
	}
	return nil
}

func cleanup(ctx context.Context, cs kubernetes.Interface, needed bool) {
	if !needed {
		return // the API server is thrown away
	}
	zero := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	for _, ns := range []string{benchNS, initNS} {
		_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, zero, metav1.ListOptions{})
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	}
	_ = cs.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: appLabel + "=bench"})
}

func parallel(ctx context.Context, n int, f func(i int) error) error {
	var wg sync.WaitGroup
	next := make(chan int)
	var once sync.Once
	var first error
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func nodeName(i int) string { return fmt.Sprintf("bench-node-%05d", i) }
func podName(i int) string  { return fmt.Sprintf("pod-%06d", i) }

func node(s NodeSpec, i int) *corev1.Node {
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(s.CPU),
		corev1.ResourceMemory: resource.MustParse(s.Memory),
		corev1.ResourcePods:   *resource.NewQuantity(int64(s.Pods), resource.DecimalSI),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName(i), Labels: map[string]string{appLabel: "bench", hostnameLabel: nodeName(i)}},
		Status: corev1.NodeStatus{
			Capacity: alloc, Allocatable: alloc.DeepCopy(), Phase: corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		},
	}
	if s.Zones > 0 {
		n.Labels[zoneLabel] = fmt.Sprintf("zone-%d", i%s.Zones)
	}
	return n
}

func pod(ns, name, schedulerName, cpu, memory string, priority int32, pc string) *corev1.Pod {
	req := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{appLabel: "bench"}},
		Spec: corev1.PodSpec{
			SchedulerName:                 schedulerName,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{Requests: req}}},
		},
	}
	if pc != "" {
		p.Spec.PriorityClassName = pc
		p.Spec.Priority = ptr.To(priority)
	}
	if ns == initNS {
		p.Labels[appLabel] = "init"
	}
	return p
}

// startScheduler starts the target's scheduler process against kubeconfig.
func startScheduler(t Target, kubeconfig string, opts Options) (func(), error) {
	qps := fmt.Sprintf("%g", opts.QPS)
	burst := fmt.Sprintf("%d", int(2*opts.QPS))
	var cmd *exec.Cmd
	var dir string
	switch t.Kind {
	case KindProfile:
		cmd = exec.Command(opts.Exe, "scheduler", "--kubeconfig", kubeconfig, "--profile", t.schedulerName(),
			"--leader-elect=false", "--listen", "", "--kube-api-qps", qps, "--kube-api-burst", burst)
	case KindExtender:
		d, err := os.MkdirTemp("", "kubelab-bench-scheduler-")
		if err != nil {
			return nil, err
		}
		dir = d
		cfg := fmt.Sprintf("profiles:\n- schedulerName: default-scheduler\n  from: default-scheduler\nextenders:\n- urlPrefix: %q\n  filterVerb: filter\n  prioritizeVerb: prioritize\n  weight: 1\n", t.Value)
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		cmd = exec.Command(opts.Exe, "scheduler", "--kubeconfig", kubeconfig, "--config", filepath.Join(dir, "config.yaml"),
			"--leader-elect=false", "--listen", "", "--kube-api-qps", qps, "--kube-api-burst", burst)
	case KindBinary:
		cmd = exec.Command(t.Value, "--kubeconfig", kubeconfig, "--leader-elect=false", "--secure-port=0",
			"--kube-api-qps", qps, "--kube-api-burst", burst)
	default:
		return nil, fmt.Errorf("target %s: kind %q has no process to start", t.Label, t.Kind)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

// WriteTable prints results as a table.
func WriteTable(out io.Writer, rs []*Result) {
	fmt.Fprintf(out, "%-17s %-28s %6s %6s %11s %8s %8s %8s %8s %22s %6s %5s %5s %17s %s\n",
		"WORKLOAD", "TARGET", "QPS", "NODES", "BOUND", "AVG/s", "P50/s", "P90/s", "P99/s", "LATENCY p50/90/99 ms", "OVER", "SKEW", "PREE", "CPU% min/mean/max", "ERROR")
	for _, r := range rs {
		fmt.Fprintf(out, "%-17s %-28s %6g %6d %11s %8.0f %8.0f %8.0f %8.0f %22s %6d %5s %5d %17s %s\n",
			r.Workload, r.Target.Label, r.QPS, r.Nodes, fmt.Sprintf("%d/%d", r.Bound, r.Pods),
			r.AvgPodsPerSec, r.P50PodsPerSec, r.P90PodsPerSec, r.P99PodsPerSec,
			fmt.Sprintf("%.0f/%.0f/%.0f", r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms),
			r.OvercommittedNodes, skew(r), r.Preempted,
			fmt.Sprintf("%.0f/%.0f/%.0f", r.CPUUtilMinPct, r.CPUUtilMeanPct, r.CPUUtilMaxPct), r.Error)
	}
}

func skew(r *Result) string {
	if r.Workload == "" || !slices.Contains([]string{"topology-spread"}, r.Workload) && r.ZoneSkew == 0 {
		return "-"
	}
	return fmt.Sprint(r.ZoneSkew)
}

// WriteJSON writes results as indented JSON.
func WriteJSON(path string, rs []*Result) error {
	data, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func priorityClass(name string, value int32) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
}
