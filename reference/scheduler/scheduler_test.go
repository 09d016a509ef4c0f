package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	sampleext "github.com/kubelab/kubelab/fakes/extender"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

// Tiny policy plugins for the tests (the real ones live in
// plugins/scheduler; reference/ does not import them).

// fitPlugin rejects nodes with too little free cpu.
type fitPlugin struct{}

func (fitPlugin) Name() string { return "TestFit" }
func (fitPlugin) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo) *spec.Status {
	want := spec.PodRequests(pod)[corev1.ResourceCPU]
	free := n.Free(corev1.ResourceCPU)
	if free.Cmp(want) < 0 {
		return spec.NewStatus(spec.Unschedulable, "Insufficient cpu")
	}
	return nil
}

// taintPlugin rejects nodes with an untolerated NoSchedule taint.
type taintPlugin struct{}

func (taintPlugin) Name() string { return "TestTaint" }
func (taintPlugin) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, n *spec.NodeInfo) *spec.Status {
	for _, t := range n.Node.Spec.Taints {
		tolerated := false
		for _, tol := range pod.Spec.Tolerations {
			if (tol.Key == "" || tol.Key == t.Key) && (tol.Operator == corev1.TolerationOpExists || tol.Value == t.Value) {
				tolerated = true
			}
		}
		if !tolerated && t.Effect == corev1.TaintEffectNoSchedule {
			return spec.NewStatus(spec.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value))
		}
	}
	return nil
}

// labelScore scores a node by its "score" label (0..100).
type labelScore struct{}

func (labelScore) Name() string { return "TestLabelScore" }
func (labelScore) Score(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, n *spec.NodeInfo) (int64, *spec.Status) {
	v, _ := strconv.ParseInt(n.Node.Labels["score"], 10, 64)
	return v, nil
}
func (labelScore) NormalizeScore(context.Context, *spec.CycleState, *corev1.Pod, []spec.NodeScore) *spec.Status {
	return nil
}

// panicPlugin panics in Filter for pods annotated test/panic.
type panicPlugin struct{}

func (panicPlugin) Name() string { return "TestPanic" }
func (panicPlugin) Filter(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, _ *spec.NodeInfo) *spec.Status {
	if pod.Annotations["test/panic"] == "true" {
		var m map[string]int
		m["boom"]++ // a nil map write: a real bug, not a deliberate panic() call
	}
	return nil
}

// hookPlugin runs a test's function at Reserve.
type hookPlugin struct {
	reserve func(pod *corev1.Pod, node string)
}

func (hookPlugin) Name() string { return "TestHook" }
func (h hookPlugin) Reserve(_ context.Context, _ *spec.CycleState, pod *corev1.Pod, node string) *spec.Status {
	if h.reserve != nil {
		h.reserve(pod, node)
	}
	return nil
}
func (hookPlugin) Unreserve(context.Context, *spec.CycleState, *corev1.Pod, string) {}

func testRegistry(t testing.TB, hook func(pod *corev1.Pod, node string)) *spec.Registry {
	t.Helper()
	reg := spec.NewRegistry()
	for _, p := range []spec.Named{fitPlugin{}, taintPlugin{}, labelScore{}, panicPlugin{}, hookPlugin{reserve: hook}} {
		p := p
		spec.MustRegister(reg.RegisterScheduler(spec.SchedulerPlugin{Name: p.Name(), Description: "test",
			New: func(map[string]string, spec.SchedulerHandle) (spec.Named, error) { return p, nil }}))
	}
	return reg
}

func profile(name string, plugins ...string) spec.Profile {
	p := spec.Profile{SchedulerName: name}
	for _, n := range plugins {
		p.Plugins = append(p.Plugins, spec.WeightedPlugin{Name: n, Weight: 1})
	}
	return p
}

// env is a secure test API server and clients.
type env struct {
	t     *testing.T
	api   *apiservertest.Server
	admin kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	api := apiservertest.StartSecure(t, nil)
	return &env{t: t, api: api, admin: api.Client}
}

// start runs a scheduler as system:kube-scheduler until the test ends.
func (e *env) start(cfg Config) *Scheduler {
	e.t.Helper()
	if cfg.Client == nil {
		cfg.Client = e.api.ClientFor(e.t, pki.SchedulerIdentity())
	}
	if cfg.Registry == nil {
		cfg.Registry = testRegistry(e.t, nil)
	}
	if len(cfg.Profiles) == 0 {
		cfg.Profiles = []spec.Profile{profile(DefaultSchedulerName, "TestFit", "TestTaint")}
	}
	s, err := New(cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	return s
}

func (e *env) node(name, cpu string, mutate ...func(*corev1.Node)) {
	e.t.Helper()
	n := spectest.MakeNode().Name(name).Capacity(spectest.Res{corev1.ResourceCPU: cpu, corev1.ResourceMemory: "8Gi"}).Obj()
	for _, m := range mutate {
		m(n)
	}
	created, err := e.admin.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create node %s: %v", name, err)
	}
	created.Status = n.Status
	if _, err := e.admin.CoreV1().Nodes().UpdateStatus(context.Background(), created, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("node %s status: %v", name, err)
	}
}

func (e *env) pod(name, cpu string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	e.t.Helper()
	p := spectest.MakePod().Name(name).Image("busybox").Req(spectest.Res{corev1.ResourceCPU: cpu}).Obj()
	p.UID = "" // the API server assigns it
	for _, m := range mutate {
		m(p)
	}
	created, err := e.admin.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s: %v", name, err)
	}
	return created
}

func (e *env) get(name string) *corev1.Pod {
	e.t.Helper()
	p, err := e.admin.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

// eventually polls f until it returns nil or the (generous) timeout ends.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) waitBound(name string) string {
	e.t.Helper()
	var node string
	eventually(e.t, 30*time.Second, func() error {
		p := e.get(name)
		if p.Spec.NodeName == "" {
			return fmt.Errorf("pod %s not bound; conditions %+v", name, p.Status.Conditions)
		}
		node = p.Spec.NodeName
		return nil
	})
	return node
}

// waitCondition waits for PodScheduled=False with reason and returns its message.
func (e *env) waitCondition(name, reason string, match func(msg string) bool) string {
	e.t.Helper()
	var msg string
	eventually(e.t, 30*time.Second, func() error {
		p := e.get(name)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == reason && (match == nil || match(c.Message)) {
				msg = c.Message
				return nil
			}
		}
		return fmt.Errorf("pod %s: no PodScheduled=False/%s condition yet: %+v", name, reason, p.Status.Conditions)
	})
	return msg
}

// waitNodes waits until s's cache holds n nodes, so that placement
// assertions do not race the node informer.
func (e *env) waitNodes(s *Scheduler, n int) {
	e.t.Helper()
	eventually(e.t, 30*time.Second, func() error {
		if got := s.cache.NodeCount(); got != n {
			return fmt.Errorf("scheduler sees %d nodes, want %d", got, n)
		}
		return nil
	})
}

func taint(key, value string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffectNoSchedule})
	}
}

func label(k, v string) func(*corev1.Node) { return func(n *corev1.Node) { n.Labels[k] = v } }

func TestSchedulesPodsWithinCapacity(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	for i := 0; i < 3; i++ {
		e.node(fmt.Sprintf("n%d", i), "2")
	}
	for i := 0; i < 6; i++ {
		e.pod(fmt.Sprintf("p%d", i), "1")
	}
	perNode := map[string]int{}
	for i := 0; i < 6; i++ {
		perNode[e.waitBound(fmt.Sprintf("p%d", i))]++
	}
	for n, c := range perNode {
		if c > 2 {
			t.Errorf("node %s got %d one-cpu pods, has 2 cpu", n, c)
		}
	}
	// A seventh pod does not fit anywhere.
	e.pod("p6", "1")
	want := "0/3 nodes are available: 3 Insufficient cpu."
	e.waitCondition("p6", reasonUnschedulable, func(m string) bool { return m == want })
}

func TestUnschedulablePodGetsConditionAndEventThenFitsOnNewNode(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	for i := 0; i < 3; i++ {
		e.node(fmt.Sprintf("small%d", i), "1")
	}
	for i := 0; i < 2; i++ {
		e.node(fmt.Sprintf("tainted%d", i), "4", taint("node-role", "x"))
	}
	e.pod("big", "2")
	want := "0/5 nodes are available: 2 node(s) had untolerated taint {node-role: x}, 3 Insufficient cpu."
	// The informer may see the pod before the last node: wait for the
	// message about all five.
	e.waitCondition("big", reasonUnschedulable, func(m string) bool { return m == want })
	eventually(t, 30*time.Second, func() error {
		evs, err := e.admin.EventsV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "FailedScheduling" && ev.Regarding.Name == "big" && ev.Note == want {
				if ev.Type != corev1.EventTypeWarning || ev.ReportingController != DefaultSchedulerName || ev.Action != "Scheduling" {
					return fmt.Errorf("event %+v", ev)
				}
				return nil
			}
		}
		return errors.New("no FailedScheduling event yet")
	})
	// A node with room makes the pod schedulable (node-add event).
	e.node("large", "4")
	if got := e.waitBound("big"); got != "large" {
		t.Errorf("bound to %s, want large", got)
	}
}

// errNoNodesAvailable is the kube-scheduler's FailedScheduling message with no nodes.
const errNoNodesAvailable = "no nodes available to schedule pods"

func TestNoNodes(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	e.pod("lonely", "1")
	if msg := e.waitCondition("lonely", reasonUnschedulable, nil); msg != errNoNodesAvailable {
		t.Errorf("message %q, want %q", msg, errNoNodesAvailable)
	}
	e.node("n", "1")
	e.waitBound("lonely")
}

func TestRequeueWhenAssignedPodDeleted(t *testing.T) {
	e := newEnv(t)
	e.start(Config{})
	e.node("n", "1")
	e.pod("first", "1")
	e.waitBound("first")
	e.pod("second", "1")
	e.waitCondition("second", reasonUnschedulable, nil)
	// Without a kubelet a bound pod is removed at once only with grace 0.
	zero := int64(0)
	if err := e.admin.CoreV1().Pods("default").Delete(context.Background(), "first", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	e.waitBound("second")
}

func TestTwoProfiles(t *testing.T) {
	e := newEnv(t)
	s := e.start(Config{Profiles: []spec.Profile{
		profile("alpha", "TestFit"),
		profile("beta", "TestFit", "TestLabelScore"),
	}})
	e.node("low", "8", label("score", "10"))
	e.node("high", "8", label("score", "90"))
	e.waitNodes(s, 2)
	for i := 0; i < 4; i++ {
		e.pod(fmt.Sprintf("b%d", i), "100m", func(p *corev1.Pod) { p.Spec.SchedulerName = "beta" })
		e.pod(fmt.Sprintf("a%d", i), "100m", func(p *corev1.Pod) { p.Spec.SchedulerName = "alpha" })
	}
	e.pod("nobody", "100m", func(p *corev1.Pod) { p.Spec.SchedulerName = "someone-else" })
	for i := 0; i < 4; i++ {
		e.waitBound(fmt.Sprintf("a%d", i))
		if n := e.waitBound(fmt.Sprintf("b%d", i)); n != "high" {
			t.Errorf("beta pod b%d went to %s, want high (score 90)", i, n)
		}
	}
	eventually(t, 30*time.Second, func() error {
		evs, err := e.admin.EventsV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "Scheduled" && ev.Regarding.Name == "b0" && ev.ReportingController == "beta" {
				return nil
			}
		}
		return errors.New("no Scheduled event by beta for b0")
	})
	time.Sleep(300 * time.Millisecond)
	if p := e.get("nobody"); p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Errorf("a pod of another scheduler was touched: node %q conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
}

func TestLeaderElectionOneReplicaBindsThenTheOtherTakesOver(t *testing.T) {
	e := newEnv(t)
	type replica struct {
		id     string
		s      *Scheduler
		cancel context.CancelFunc
		done   chan error
	}
	start := func(id string) *replica {
		s, err := New(Config{Client: e.api.ClientFor(t, pki.SchedulerIdentity()), Registry: testRegistry(t, nil),
			Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit")},
			LeaderElection: LeaderElection{Enabled: true, Identity: id, LeaseDuration: 2 * time.Second,
				RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{id: id, s: s, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- s.Run(ctx) }()
		return r
	}
	a, b := start("replica-a"), start("replica-b")
	stopped := map[*replica]bool{}
	t.Cleanup(func() {
		for _, r := range []*replica{a, b} {
			if !stopped[r] {
				r.cancel()
				<-r.done
			}
		}
	})
	var leader, follower *replica
	select {
	case <-a.s.Leading():
		leader, follower = a, b
	case <-b.s.Leading():
		leader, follower = b, a
	case <-time.After(60 * time.Second):
		t.Fatal("no replica leads")
	}
	e.node("n", "8")
	e.pod("p1", "100m")
	e.waitBound("p1")
	select {
	case <-follower.s.Leading():
		t.Fatal("both replicas lead")
	default:
	}
	lease, err := e.admin.CoordinationV1().Leases("kube-system").Get(context.Background(), "kube-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leader.id {
		t.Errorf("lease holder %v, want %s", lease.Spec.HolderIdentity, leader.id)
	}
	// Stop the leader (it releases the lease); the follower takes over.
	leader.cancel()
	if err := <-leader.done; err != nil {
		t.Errorf("leader Run: %v", err)
	}
	stopped[leader] = true
	select {
	case <-follower.s.Leading():
	case <-time.After(60 * time.Second):
		t.Fatal("the follower did not take over")
	}
	e.pod("p2", "100m")
	e.waitBound("p2")
}

func TestExtenderFilterPrioritizeBind(t *testing.T) {
	e := newEnv(t)
	ext := sampleext.New(sampleext.Config{Client: e.admin})
	hs := httptest.NewServer(ext)
	t.Cleanup(hs.Close)
	s := e.start(Config{Extenders: []ExtenderConfig{{URLPrefix: hs.URL, FilterVerb: "filter", PrioritizeVerb: "prioritize", BindVerb: "bind", Weight: 2}}})
	e.node("excluded", "8", label(sampleext.DefaultExcludeLabel, "yes"), label(sampleext.DefaultScoreLabel, "10"))
	e.node("meh", "8", label(sampleext.DefaultScoreLabel, "1"))
	e.node("best", "8", label(sampleext.DefaultScoreLabel, "9"))
	e.waitNodes(s, 3)
	for i := 0; i < 3; i++ {
		e.pod(fmt.Sprintf("x%d", i), "100m")
	}
	for i := 0; i < 3; i++ {
		if n := e.waitBound(fmt.Sprintf("x%d", i)); n != "best" {
			t.Errorf("x%d on %s, want best", i, n)
		}
		if p := e.get(fmt.Sprintf("x%d", i)); p.Annotations["extender.kubelab.io/bound-by"] != "sample-extender" {
			t.Errorf("x%d was not bound by the extender: annotations %v", i, p.Annotations)
		}
	}
	if ext.Calls("filter") == 0 || ext.Calls("prioritize") == 0 || ext.Calls("bind") < 3 {
		t.Errorf("calls: filter %d prioritize %d bind %d", ext.Calls("filter"), ext.Calls("prioritize"), ext.Calls("bind"))
	}
	// huge fills "meh"; then only the excluded node has room for huge2:
	// the extender's reason is counted with the plugins'.
	e.pod("huge", "7900m")
	if n := e.waitBound("huge"); n != "meh" {
		t.Errorf("huge on %s, want meh", n)
	}
	e.pod("huge2", "7900m")
	want := "0/3 nodes are available: 1 node(s) had label " + sampleext.DefaultExcludeLabel + ", 2 Insufficient cpu."
	e.waitCondition("huge2", reasonUnschedulable, func(m string) bool { return m == want })
}

func TestExtenderFailures(t *testing.T) {
	e := newEnv(t)
	ext := sampleext.New(sampleext.Config{})
	hs := httptest.NewServer(ext)
	t.Cleanup(hs.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	e.start(Config{
		Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit"), profile("strict", "TestFit")},
		Extenders: []ExtenderConfig{
			{URLPrefix: deadURL, FilterVerb: "filter", Ignorable: true},
			{URLPrefix: hs.URL, FilterVerb: "filter", Ignorable: false, HTTPTimeout: Duration{500 * time.Millisecond},
				ManagedResources: []ManagedResource{{Name: "example.com/strict"}}},
		},
	})
	e.node("n", "8")
	// The ignorable extender is down: pods still schedule.
	e.pod("ok", "100m")
	e.waitBound("ok")
	strict := func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"example.com/strict": resource.MustParse("1")}
		p.Spec.Containers[0].Resources.Requests["example.com/strict"] = resource.MustParse("1")
	}
	// The non-ignorable one replies garbage: the attempt fails with an error.
	ext.SetMalformed(true)
	e.pod("garbage", "100m", strict)
	msg := e.waitCondition("garbage", reasonSchedulerError, nil)
	if !strings.Contains(msg, "malformed reply") {
		t.Errorf("message %q does not say the reply was malformed", msg)
	}
	// Then it times out.
	ext.SetMalformed(false)
	ext.SetDelay(3 * time.Second)
	e.pod("slow", "100m", strict)
	msg = e.waitCondition("slow", reasonSchedulerError, nil)
	if !strings.Contains(msg, "Timeout") && !strings.Contains(msg, "deadline") {
		t.Errorf("message %q does not say the call timed out", msg)
	}
	// Healthy again: both get scheduled after their backoff.
	ext.SetDelay(0)
	e.waitBound("garbage")
	e.waitBound("slow")
}

func TestPanickingPluginFailsOnlyThatPod(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit", "TestPanic")}})
	e.node("n", "8")
	e.pod("bad", "100m", func(p *corev1.Pod) { p.Annotations = map[string]string{"test/panic": "true"} })
	msg := e.waitCondition("bad", reasonSchedulerError, nil)
	if !strings.Contains(msg, `plugin "TestPanic" panicked`) {
		t.Errorf("message %q", msg)
	}
	e.pod("good", "100m")
	e.waitBound("good")
}

func TestNodeDeletedBetweenFilterAndBind(t *testing.T) {
	e := newEnv(t)
	var sched atomic.Pointer[Scheduler]
	var once atomic.Bool
	hook := func(pod *corev1.Pod, node string) {
		if pod.Name != "victim" || !once.CompareAndSwap(false, true) {
			return
		}
		if err := e.admin.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node: %v", err)
		}
		for sched.Load().cache.HasNode(node) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	s := e.start(Config{Registry: testRegistry(t, hook), Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit", "TestHook")}})
	sched.Store(s)
	e.node("doomed", "8")
	e.pod("victim", "100m")
	msg := e.waitCondition("victim", reasonSchedulerError, func(m string) bool { return strings.HasPrefix(m, "Binding rejected") })
	if !strings.Contains(msg, `node "doomed" was deleted`) {
		t.Errorf("message %q", msg)
	}
	e.waitCondition("victim", reasonUnschedulable, func(m string) bool { return m == errNoNodesAvailable })
	if p := e.get("victim"); p.Spec.NodeName != "" {
		t.Fatalf("pod bound to deleted node %q", p.Spec.NodeName)
	}
	e.node("fresh", "8")
	if n := e.waitBound("victim"); n != "fresh" {
		t.Errorf("bound to %s", n)
	}
}

func TestExplainEndpointAnnotationAndMetrics(t *testing.T) {
	e := newEnv(t)
	s := e.start(Config{ListenAddress: "127.0.0.1:0", Explain: true, ExplainAnnotation: true,
		Profiles: []spec.Profile{{SchedulerName: DefaultSchedulerName, Plugins: []spec.WeightedPlugin{
			{Name: "TestFit"}, {Name: "TestTaint"}, {Name: "TestLabelScore", Weight: 2}}}}})
	e.node("a", "8", label("score", "20"))
	e.node("b", "8", label("score", "40"))
	e.node("full", "1")
	e.node("tainted", "8", taint("dedicated", "gpu"))
	e.waitNodes(s, 4)
	e.pod("web", "2")
	if n := e.waitBound("web"); n != "b" {
		t.Errorf("web on %s, want b", n)
	}
	base := "http://" + s.Addr()
	var x Explanation
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/explain/default/web")
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(&x)
	})
	if x.Result != "Scheduled" || x.Node != "b" || x.NodesTotal != 4 || len(x.Nodes) != 4 {
		t.Fatalf("explanation %+v", x)
	}
	byNode := map[string]NodeExplanation{}
	for _, n := range x.Nodes {
		byNode[n.Node] = n
	}
	if n := byNode["b"]; !n.Chosen || n.Total != 80 || n.Scores["TestLabelScore"] != 80 {
		t.Errorf("b: %+v", n)
	}
	if n := byNode["full"]; n.Verdict != "Unschedulable" || n.Plugin != "TestFit" || n.Reason != "Insufficient cpu" {
		t.Errorf("full: %+v", n)
	}
	if n := byNode["tainted"]; n.Verdict != "UnschedulableAndUnresolvable" || n.Plugin != "TestTaint" {
		t.Errorf("tainted: %+v", n)
	}
	if x.Nodes[0].Node != "b" {
		t.Errorf("chosen node is not listed first: %+v", x.Nodes)
	}
	if ann := e.get("web").Annotations[ExplanationAnnotation]; !strings.Contains(ann, `"node":"b"`) {
		t.Errorf("annotation %q", ann)
	}
	resp, err := http.Get(base + "/explain/default/nope")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown pod: HTTP %d", resp.StatusCode)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, name := range []string{
		"scheduler_scheduling_attempt_duration_seconds", "scheduler_pod_scheduling_duration_seconds",
		"scheduler_plugin_execution_duration_seconds", `scheduler_pending_pods{queue="active"}`,
		`scheduler_pending_pods{queue="unschedulable"}`, `scheduler_pending_pods{queue="backoff"}`,
		`scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1`,
		"scheduler_framework_extension_point_duration_seconds",
	} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	resp, err = http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d", resp.StatusCode)
	}
}

func TestQueueBackoffAndOrder(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newSchedulingQueue(nil, time.Second, 10*time.Second, func() time.Time { return now })
	mk := func(name string, prio int32) *corev1.Pod { return spectest.MakePod().Name(name).Priority(prio).Obj() }
	q.Add(mk("low", 0))
	now = now.Add(time.Millisecond)
	q.Add(mk("high", 100))
	now = now.Add(time.Millisecond)
	q.Add(mk("low2", 0))
	var order []string
	for i := 0; i < 3; i++ {
		qp, _ := q.Pop(context.Background())
		order = append(order, qp.pod.Name)
		q.Done(qp.pod.UID)
	}
	if strings.Join(order, ",") != "high,low,low2" {
		t.Errorf("order %v", order)
	}
	// Backoff doubles from 1 s to the 10 s cap, per failed attempt.
	q.Add(mk("retry", 0))
	var got []time.Duration
	for i := 0; i < 6; i++ {
		qp, _ := q.Pop(context.Background())
		q.Requeue(qp, nil, false)
		if d := q.Depths(); d.backoff != 1 {
			t.Fatalf("depths %+v", d)
		}
		start := now
		for q.Depths().active == 0 {
			now = now.Add(100 * time.Millisecond)
			q.Flush()
		}
		got = append(got, now.Sub(start).Round(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Errorf("backoffs %v, want %v s", got, want)
			break
		}
	}
	// Unschedulable pods wait for an event, then go through backoff.
	qp, _ := q.Pop(context.Background())
	q.Requeue(qp, nil, true)
	q.Flush()
	if d := q.Depths(); d.unschedulable != 0 && d.active != 0 {
		t.Fatalf("depths %+v", d)
	}
	// The event happened after the attempt started (moveCycle) only if
	// MoveAllUnschedulable ran during it; here it did not.
	if d := q.Depths(); d.unschedulable != 1 {
		t.Fatalf("unschedulable pod not parked: %+v", d)
	}
	q.MoveAllUnschedulable()
	if d := q.Depths(); d.unschedulable != 0 || d.backoff+d.active != 1 {
		t.Fatalf("after the event: %+v", d)
	}
	// A pod unschedulable for over 5 minutes is retried without an event.
	now = now.Add(time.Minute)
	q.Flush()
	qp, _ = q.Pop(context.Background())
	q.Requeue(qp, nil, true)
	now = now.Add(5*time.Minute + time.Second)
	q.Flush()
	if d := q.Depths(); d.unschedulable != 0 {
		t.Errorf("not flushed after 5 minutes: %+v", d)
	}
}

func TestEventDuringAttemptSendsPodToBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newSchedulingQueue(nil, time.Second, 10*time.Second, func() time.Time { return now })
	q.Add(spectest.MakePod().Name("p").UID("p").Obj())
	qp, _ := q.Pop(context.Background())
	q.MoveAllUnschedulable() // e.g. a node was added while p was being scheduled
	q.Requeue(qp, nil, true)
	if d := q.Depths(); d.backoff != 1 || d.unschedulable != 0 {
		t.Errorf("depths %+v: the event during the attempt was missed", d)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	reg := testRegistry(t, nil)
	client := kubernetes.New(nil)
	for name, cfg := range map[string]Config{
		"no profiles":       {Client: client, Registry: reg},
		"unknown plugin":    {Client: client, Registry: reg, Profiles: []spec.Profile{profile("x", "Nope")}},
		"duplicate profile": {Client: client, Registry: reg, Profiles: []spec.Profile{profile("x"), profile("x")}},
		"bad percentage":    {Client: client, Registry: reg, Profiles: []spec.Profile{profile("x")}, PercentageOfNodesToScore: 101},
		"extender weight": {Client: client, Registry: reg, Profiles: []spec.Profile{profile("x")},
			Extenders: []ExtenderConfig{{URLPrefix: "http://x", PrioritizeVerb: "p"}}},
		"extender url": {Client: client, Registry: reg, Profiles: []spec.Profile{profile("x")},
			Extenders: []ExtenderConfig{{URLPrefix: "x", FilterVerb: "f"}}},
		"no client": {Registry: reg, Profiles: []spec.Profile{profile("x")}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	var _ = apierrors.IsNotFound
	var _ = sort.Strings
}

func TestGatedPodWaitsForItsGates(t *testing.T) {
	e := newEnv(t)
	s := e.start(Config{})
	e.node("n", "8")
	e.pod("gated", "100m", func(p *corev1.Pod) {
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
	})
	e.pod("free", "100m")
	e.waitBound("free")
	eventually(t, 30*time.Second, func() error {
		if d := s.queue.Depths(); d.gated != 1 {
			return fmt.Errorf("depths %+v", d)
		}
		return nil
	})
	if p := e.get("gated"); p.Spec.NodeName != "" {
		t.Fatalf("gated pod bound to %s", p.Spec.NodeName)
	}
	p := e.get("gated")
	p.Spec.SchedulingGates = nil
	if _, err := e.admin.CoreV1().Pods("default").Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitBound("gated")
}

func TestPodChangedDuringAttemptIsNotParked(t *testing.T) {
	now := time.Unix(1000, 0)
	q := newSchedulingQueue(nil, time.Second, 10*time.Second, func() time.Time { return now })
	p := spectest.MakePod().Name("p").UID("p").Obj()
	q.Add(p)
	qp, _ := q.Pop(context.Background())
	changed := p.DeepCopy()
	changed.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	q.Update(changed)
	q.Requeue(qp, nil, true)
	if d := q.Depths(); d.backoff != 1 || d.unschedulable != 0 {
		t.Errorf("depths %+v: the update during the attempt was missed", d)
	}
}

// A scheduler that starts over a cluster whose nodes are already full must
// count the pods bound before it started before it places anything (the
// event handlers, not only the informers' stores, must have synced).
func TestStartsOverFullNodesWithoutOvercommitting(t *testing.T) {
	e := newEnv(t)
	e.node("full", "2")
	e.node("empty", "2")
	const bound = 200
	for i := 0; i < bound; i++ {
		e.pod(fmt.Sprintf("old%d", i), "10m", func(p *corev1.Pod) { p.Spec.NodeName = "full" })
	}
	for i := 0; i < 10; i++ {
		e.pod(fmt.Sprintf("new%d", i), "100m")
	}
	e.start(Config{})
	for i := 0; i < 10; i++ {
		if n := e.waitBound(fmt.Sprintf("new%d", i)); n != "empty" {
			t.Errorf("pod new%d bound to %q, whose 2 cpu the %d pods bound before the start already use", i, n, bound)
		}
	}
}
