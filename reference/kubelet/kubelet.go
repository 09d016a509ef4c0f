package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultRelistPeriod is how often the runtime is relisted (upstream's
// PLEG relist period).
const DefaultRelistPeriod = time.Second

// Config is what a Kubelet runs with. Zero durations mean upstream's
// defaults.
type Config struct {
	// NodeName is the Node's name (required).
	NodeName string
	// Hostname is the kubernetes.io/hostname label and the Hostname
	// address; NodeName when empty.
	Hostname string
	// Client talks to the API server (required).
	Client kubernetes.Interface
	// Runtime runs the pods (required).
	Runtime Runtime
	// RootDir holds the kubelet's files: pod logs under RootDir/logs
	// (required).
	RootDir string
	// InternalIP is the node's InternalIP address, also the pods' hostIP.
	InternalIP string
	// PodCIDR, when set, is written into the Node's spec at registration
	// if it has none; the Node's podCIDR is handed to the runtime.
	PodCIDR string
	// Labels are extra Node labels.
	Labels map[string]string
	// Capacity is the node's capacity; nil means the machine's
	// (MachineCapacity with MaxPods). Allocatable equals it.
	Capacity corev1.ResourceList
	// MaxPods is the pods capacity when Capacity is nil; DefaultMaxPods
	// when 0.
	MaxPods int
	// KubeletVersion is reported in the Node's system info.
	KubeletVersion string
	// ClusterDNS and ClusterDomain configure dnsPolicy ClusterFirst.
	ClusterDNS    []string
	ClusterDomain string
	// ResolvConf is the host's resolver file; /etc/resolv.conf when empty.
	ResolvConf string
	// CgroupParent is the parent cgroup of pod sandboxes.
	CgroupParent string
	// NodeStatusUpdateFrequency, NodeStatusReportFrequency,
	// LeaseDuration (renewed every quarter of it unless
	// LeaseRenewInterval) and RelistPeriod are the loops' periods.
	// SyncFrequency is how often a live pod is synced without a change
	// (its configMap and secret volumes refreshed); 1 min by default.
	NodeStatusUpdateFrequency, NodeStatusReportFrequency, SyncFrequency time.Duration
	LeaseDuration, LeaseRenewInterval, RelistPeriod                     time.Duration
	// StaticPodPath, when set, is a directory of pod manifests the
	// kubelet runs as static pods, shown in the API as mirror pods;
	// read every FileCheckFrequency (DefaultFileCheckFrequency).
	StaticPodPath      string
	FileCheckFrequency time.Duration
	// APIAddr, when set, is where the kubelet API is served over HTTPS
	// (see Handler and Authenticated), e.g. ":10250"; APICert is its
	// certificate (nil: self-signed) and APIClientCAs verifies client
	// certificates (nil: bearer tokens only).
	APIAddr      string
	APICert      *tls.Certificate
	APIClientCAs *x509.CertPool
	// Services, when set, is a services informer shared by several
	// kubelets of one process (hollow nodes); started by the caller.
	// Nil: the kubelet watches services itself.
	Services coreinformers.ServiceInformer
	// Backoff is the crash-loop back-off policy.
	Backoff BackoffPolicy
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives the kubelet's logs; nil discards them.
	Logger *slog.Logger
}

// Kubelet is one node agent. Create it with New and start it with Run.
type Kubelet struct {
	cfg    Config
	client kubernetes.Interface
	rt     Runtime
	log    *slog.Logger
	now    func() time.Time

	capacity, allocatable corev1.ResourceList
	sysInfo               corev1.NodeSystemInfo
	runtimeName           string
	sandboxOpts           SandboxOptions

	// Owned by the heartbeat goroutine (and Run before it starts).
	lastNodePost time.Time
	podCIDR      string
	nodeUID      types.UID

	pods     listersv1.PodLister
	services listersv1.ServiceLister
	prober   *prober
	node     atomic.Pointer[corev1.Node] // the Node as last written, for admission

	recorder record.EventRecorder // nil until Run
	tokens   *tokenManager

	mu       sync.Mutex                // guards workers, relisted, static and stopped
	workers  map[types.UID]*podWorker  // one per pod with something to do
	wg       sync.WaitGroup            // the workers
	relisted map[types.UID]string      // the last relist's fingerprint per pod
	static   map[types.UID]*corev1.Pod // static pods from StaticPodPath, by UID
	stopped  bool                      // Run is returning: no new workers
}

// New checks cfg and fills in defaults. It contacts nothing.
func New(cfg Config) (*Kubelet, error) {
	if cfg.NodeName == "" || cfg.Client == nil || cfg.Runtime == nil || cfg.RootDir == "" {
		return nil, errors.New("kubelet: NodeName, Client, Runtime and RootDir are required")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.NodeName
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.NodeStatusUpdateFrequency, DefaultNodeStatusUpdateFrequency)
	def(&cfg.NodeStatusReportFrequency, DefaultNodeStatusReportFrequency)
	def(&cfg.LeaseDuration, DefaultLeaseDuration)
	def(&cfg.LeaseRenewInterval, cfg.LeaseDuration/4)
	def(&cfg.RelistPeriod, DefaultRelistPeriod)
	def(&cfg.SyncFrequency, time.Minute)
	def(&cfg.FileCheckFrequency, DefaultFileCheckFrequency)
	if cfg.MaxPods <= 0 {
		cfg.MaxPods = DefaultMaxPods
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	k := &Kubelet{cfg: cfg, client: cfg.Client, rt: cfg.Runtime, log: cfg.Logger, now: cfg.Now,
		workers: map[types.UID]*podWorker{}, relisted: map[types.UID]string{}}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	k.prober = newProber(k)
	k.tokens = newTokenManager(cfg.Client, k.now)
	k.capacity = cfg.Capacity
	if k.capacity == nil {
		c, err := MachineCapacity(cfg.RootDir, cfg.MaxPods)
		if err != nil {
			return nil, fmt.Errorf("kubelet: machine capacity: %w", err)
		}
		k.capacity = c
	}
	k.allocatable = k.capacity.DeepCopy()
	hostDNS, err := HostDNS(cfg.ResolvConf)
	if err != nil {
		k.log.Warn("no host resolver configuration", "file", cfg.ResolvConf, "err", err)
	}
	k.sandboxOpts = SandboxOptions{
		LogRoot: filepath.Join(cfg.RootDir, "logs"), NodeHostname: cfg.Hostname,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, HostDNS: hostDNS, CgroupParent: cfg.CgroupParent,
	}
	return k, nil
}

// Run registers the Node, then runs the heartbeats, the relist and the pod
// workers until ctx ends. It returns an error only when it cannot start
// (the runtime does not answer, the Node cannot be registered). Stopping
// leaves the pods' containers running.
func (k *Kubelet) Run(ctx context.Context) error {
	if err := os.MkdirAll(k.sandboxOpts.LogRoot, 0o755); err != nil {
		return err
	}
	v, err := k.rt.Version(ctx, "v1")
	if err != nil {
		return fmt.Errorf("kubelet: runtime version: %w", err)
	}
	k.runtimeName = v.GetRuntimeName()
	k.sysInfo = SystemInfo(k.cfg.KubeletVersion, v.GetRuntimeName()+"://"+v.GetRuntimeVersion())
	n, err := k.register(ctx)
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	k.nodeUID = n.UID
	recorder, stopEvents := newRecorder(k)
	defer stopEvents()
	k.recorder = recorder
	k.recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: k.cfg.NodeName, UID: types.UID(k.cfg.NodeName)},
		corev1.EventTypeNormal, EventStarting, "Starting kubelet.")
	if err := k.postStatus(ctx, true); err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	if err := k.renewLease(ctx); err != nil {
		k.log.Warn("lease creation failed", "err", err)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods()
	k.pods = inf.Lister()
	kickPod := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			uid := p.UID
			if h := mirrorOf(p); h != "" {
				uid = types.UID(h) // a mirror pod: its static pod's worker
			}
			k.kick(ctx, uid, p.Namespace, p.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    kickPod,
		UpdateFunc: func(_, n any) { kickPod(n) },
		DeleteFunc: kickPod,
	}); err != nil {
		return err
	}
	// Services, for the containers' service environment variables: the
	// caller's shared informer, or one of its own.
	synced := []cache.InformerSynced{inf.Informer().HasSynced}
	if k.cfg.Services != nil {
		k.services = k.cfg.Services.Lister()
		synced = append(synced, k.cfg.Services.Informer().HasSynced)
	} else {
		svcFactory := informers.NewSharedInformerFactory(k.client, 0)
		svcInf := svcFactory.Core().V1().Services()
		k.services = svcInf.Lister()
		synced = append(synced, svcInf.Informer().HasSynced)
		svcFactory.Start(ctx.Done())
		defer svcFactory.Shutdown()
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil // stopped before the pods were listed
	}
	k.log.Info("kubelet running", "node", k.cfg.NodeName, "runtime", k.runtimeName)
	go k.heartbeat(ctx)
	if k.cfg.StaticPodPath != "" {
		go k.staticLoop(ctx)
	}
	if k.cfg.APIAddr != "" {
		go func() {
			if err := k.ServeAPI(ctx, k.cfg.APIAddr, k.cfg.APICert, k.cfg.APIClientCAs); err != nil {
				k.log.Error("kubelet API", "addr", k.cfg.APIAddr, "err", err)
			}
		}()
	}
	k.relistLoop(ctx)
	k.mu.Lock()
	k.stopped = true // no worker starts after this
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

// kick makes the worker of pod uid sync soon, starting one if needed.
func (k *Kubelet) kick(ctx context.Context, uid types.UID, namespace, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ctx.Err() != nil || k.stopped {
		return
	}
	w, ok := k.workers[uid]
	if !ok {
		w = &podWorker{k: k, uid: uid, namespace: namespace, name: name, kickc: make(chan struct{}, 1),
			backoff: map[string]BackoffEntry{}, reasons: map[string]Waiting{}}
		k.workers[uid] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(ctx)
		}()
	}
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

// workerDone removes a worker that has nothing left to do, unless a kick
// arrived meanwhile: it reports whether the worker may exit.
func (k *Kubelet) workerDone(w *podWorker) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(w.kickc) > 0 {
		return false
	}
	if k.workers[w.uid] == w {
		delete(k.workers, w.uid)
	}
	return true
}

// relistLoop lists the runtime every RelistPeriod and kicks the workers of
// pods whose sandboxes or containers changed (upstream's PLEG), including
// pods the API no longer has, so their leftovers are cleaned up.
func (k *Kubelet) relistLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.RelistPeriod)
	defer t.Stop()
	for {
		k.relist(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *Kubelet) relist(ctx context.Context) {
	sbs, err := k.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("relist: sandboxes", "err", err)
		}
		return
	}
	cs, err := k.rt.ListContainers(ctx, nil)
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("relist: containers", "err", err)
		}
		return
	}
	type podKey struct{ namespace, name string }
	prints := map[types.UID][]string{}
	names := map[types.UID]podKey{}
	for _, s := range sbs {
		uid := types.UID(s.GetLabels()[LabelPodUID])
		if uid == "" {
			continue // not the kubelet's
		}
		prints[uid] = append(prints[uid], "s/"+s.GetId()+"/"+s.GetState().String())
		names[uid] = podKey{s.GetMetadata().GetNamespace(), s.GetMetadata().GetName()}
	}
	for _, c := range cs {
		uid := types.UID(c.GetLabels()[LabelPodUID])
		if uid == "" {
			continue
		}
		prints[uid] = append(prints[uid], "c/"+c.GetId()+"/"+c.GetState().String())
		if _, ok := names[uid]; !ok {
			names[uid] = podKey{c.GetLabels()[LabelPodNamespace], c.GetLabels()[LabelPodName]}
		}
	}
	cur := map[types.UID]string{}
	for uid, p := range prints {
		sort.Strings(p)
		cur[uid] = strings.Join(p, ",")
	}
	k.mu.Lock()
	prev := k.relisted
	k.relisted = cur
	k.mu.Unlock()
	for uid, fp := range cur {
		if prev[uid] != fp {
			k.kick(ctx, uid, names[uid].namespace, names[uid].name)
		}
	}
	for uid := range prev {
		if _, ok := cur[uid]; !ok {
			k.kick(ctx, uid, "", "")
		}
	}
}

// observe asks the runtime about one pod (upstream's GetPodStatus).
func (k *Kubelet) observe(ctx context.Context, uid types.UID) (ObservedPod, error) {
	var obs ObservedPod
	sel := map[string]string{LabelPodUID: string(uid)}
	sbs, err := k.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return obs, err
	}
	for _, s := range sbs {
		o := ObservedSandbox{ID: s.GetId(), Attempt: s.GetMetadata().GetAttempt(),
			Ready: s.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: nanos(s.GetCreatedAt())}
		if o.Ready {
			if st, err := k.rt.PodSandboxStatus(ctx, s.GetId(), false); err == nil && st.GetStatus() != nil {
				o = observedSandbox(st.GetStatus())
			}
		}
		obs.Sandboxes = append(obs.Sandboxes, o)
	}
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return obs, err
	}
	for _, c := range cs {
		st, err := k.rt.ContainerStatus(ctx, c.GetId(), false)
		if err != nil || st.GetStatus() == nil {
			continue // removed meanwhile
		}
		o := observedContainer(st.GetStatus())
		o.SandboxID = c.GetPodSandboxId()
		if o.Name == "" {
			o.Name = c.GetLabels()[LabelContainerName]
		}
		obs.Containers = append(obs.Containers, o)
	}
	obs.Sort()
	return obs, nil
}

// hostIPs are the pods' hostIPs.
func (k *Kubelet) hostIPs() []string {
	if k.cfg.InternalIP == "" {
		return nil
	}
	return []string{k.cfg.InternalIP}
}

// activePods are the pods admission counts against pod: the other pods
// bound here that are not terminal and were admitted, or created before
// pod (so that of two pods that arrive together the older wins).
func (k *Kubelet) activePods(pod *corev1.Pod) []*corev1.Pod {
	all, err := k.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range all {
		if p.UID == pod.UID || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		older := p.CreationTimestamp.Before(&pod.CreationTimestamp) ||
			(p.CreationTimestamp.Equal(&pod.CreationTimestamp) && p.Namespace+"/"+p.Name < pod.Namespace+"/"+pod.Name)
		if older || k.admitted(p.UID) {
			out = append(out, p)
		}
	}
	return out
}

// admitted reports whether the worker of pod uid admitted it.
func (k *Kubelet) admitted(uid types.UID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.workers[uid]
	return ok && w.admitted.Load()
}

// allServices lists the cluster's services for ServiceEnv (none when they
// cannot be listed).
func (k *Kubelet) allServices() []*corev1.Service {
	if k.services == nil {
		return nil
	}
	svcs, err := k.services.List(labels.Everything())
	if err != nil {
		return nil
	}
	return svcs
}
