package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// Isolation of a spec's objects.
const (
	// SpecLabel labels (and, as a NoSchedule taint, taints) the nodes of
	// one spec with the spec's id; the spec's pods select and tolerate it.
	SpecLabel = "conformance.kubelab.io/scheduler-spec"
	// zoneLabel is the well-known zone label.
	zoneLabel = "topology.kubernetes.io/zone"
	// hostnameLabel is the well-known hostname label.
	hostnameLabel = "kubernetes.io/hostname"
	// pauseImage is the pods' image; no kubelet ever runs it.
	pauseImage = "registry.k8s.io/pause:3.10"
)

// Timing of the verdicts.
const (
	// specTimeout bounds every spec but the Slow ones.
	specTimeout = 90 * time.Second
	// bindTimeout is how long a pod that can be placed may stay pending.
	bindTimeout = 30 * time.Second
	// settle is how long the suite watches pods that must stay pending
	// (or nodes that must stay as they are) before it concludes.
	settle = 2 * time.Second
)

// fixture is what every spec gets: a client, a namespace, and an id that
// names the spec's nodes and cluster-scoped objects.
type fixture struct {
	t      Target
	client kubernetes.Interface
	ns     string
	id     string
	// nodes are the names of the nodes the spec made.
	nodes []string
	// priorityClasses are the PriorityClasses the spec made.
	priorityClasses []string
}

// newFixture sets up, before each spec, a client for t, a namespace and an
// id, skips the spec when t does not claim capability c, and cleans
// everything up after it.
func newFixture(t Target, c spec.Capability) *fixture {
	f := &fixture{t: t}
	BeforeEach(func(ctx SpecContext) {
		if t.Claims != nil {
			harness.Require(t.Claims, c)
		}
		cfg, err := t.Config(ctx)
		Expect(err).NotTo(HaveOccurred(), "API server of target %s", t.Name)
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = 500, 1000
		f.client, err = kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		f.id = rand.String(8)
		f.nodes, f.priorityClasses = nil, nil
		f.ns = "sched-" + f.id
		Expect(harness.CreateNamespace(ctx, f.client, f.ns)).To(Succeed(), "creating the spec's namespace")
		DeferCleanup(f.cleanup)
	})
	return f
}

// cleanup deletes the spec's pods (at once: no kubelet will ever confirm
// their termination), nodes, priority classes and namespace.
func (f *fixture) cleanup(ctx context.Context) {
	zero := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	pods, err := f.client.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			err := f.client.CoreV1().Pods(f.ns).Delete(ctx, p.Name, zero)
			if err != nil && !apierrors.IsNotFound(err) {
				GinkgoWriter.Printf("cleanup: deleting pod %s/%s: %v\n", f.ns, p.Name, err)
			}
		}
	}
	nodes, err := f.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: SpecLabel + "=" + f.id})
	if err == nil {
		for _, n := range nodes.Items {
			if err := f.client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				GinkgoWriter.Printf("cleanup: deleting node %s: %v\n", n.Name, err)
			}
		}
	}
	for _, pc := range f.priorityClasses {
		_ = f.client.SchedulingV1().PriorityClasses().Delete(ctx, pc, metav1.DeleteOptions{})
	}
	if err := harness.DeleteNamespace(ctx, f.client, f.ns); err != nil {
		GinkgoWriter.Printf("cleanup: %v\n", err)
	}
}

// res builds a resource list from "cpu", "memory", "pods" quantities;
// empty strings are left out.
func res(cpu, memory, pods string) corev1.ResourceList {
	rl := corev1.ResourceList{}
	if cpu != "" {
		rl[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		rl[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	if pods != "" {
		rl[corev1.ResourcePods] = resource.MustParse(pods)
	}
	return rl
}

// nodeOpt adjusts a node before it is created.
type nodeOpt func(*corev1.Node)

func withNodeLabels(kv ...string) nodeOpt {
	return func(n *corev1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withTaint(key, value string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	}
}

func withUnschedulable() nodeOpt { return func(n *corev1.Node) { n.Spec.Unschedulable = true } }

func withAllocatable(name corev1.ResourceName, q string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Allocatable[name] = resource.MustParse(q)
		n.Status.Capacity[name] = resource.MustParse(q)
	}
}

// nodeName is the full name of the spec's node with short name short.
func (f *fixture) nodeName(short string) string { return "sched-" + f.id + "-" + short }

// node builds the spec's node short with allocatable alloc, Ready,
// labelled and tainted with the spec's id.
func (f *fixture) node(short string, alloc corev1.ResourceList, opts ...nodeOpt) *corev1.Node {
	name := f.nodeName(short)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{SpecLabel: f.id, hostnameLabel: name}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: SpecLabel, Value: f.id, Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Capacity:    alloc.DeepCopy(),
			Allocatable: alloc.DeepCopy(),
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "a node object of the scheduler suite", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}},
		},
	}
	if _, ok := n.Status.Allocatable[corev1.ResourcePods]; !ok {
		n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse("110")
		n.Status.Capacity[corev1.ResourcePods] = resource.MustParse("110")
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// createNode creates the spec's node short (see node), and sets its status
// again if the server dropped it on create.
func (f *fixture) createNode(ctx context.Context, short string, alloc corev1.ResourceList, opts ...nodeOpt) *corev1.Node {
	GinkgoHelper()
	n := f.node(short, alloc, opts...)
	created, err := f.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating node %s", n.Name)
	f.nodes = append(f.nodes, n.Name)
	if len(created.Status.Allocatable) == 0 || len(created.Status.Conditions) == 0 {
		created.Status = n.Status
		created, err = f.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred(), "setting the status of node %s", n.Name)
	}
	return created
}

// podOpt adjusts a pod before it is created.
type podOpt func(*corev1.Pod)

func withLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withSelector(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func withToleration(key, value string, effect corev1.TaintEffect) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpEqual, Value: value, Effect: effect})
	}
}

func withNodeName(node string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = node } }

func withHostPort(port int32, proto corev1.Protocol) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto})
	}
}

func withInit(requests corev1.ResourceList) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
			Name: fmt.Sprintf("init%d", len(p.Spec.InitContainers)), Image: pauseImage,
			Resources: corev1.ResourceRequirements{Requests: requests, Limits: requests},
		})
	}
}

// withSidecar adds a sidecar: an init container with restartPolicy
// Always, which runs beside the app containers.
func withSidecar(requests corev1.ResourceList) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
			Name: fmt.Sprintf("init%d", len(p.Spec.InitContainers)), Image: pauseImage,
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Resources:     corev1.ResourceRequirements{Requests: requests, Limits: requests},
		})
	}
}

func withAffinity(a *corev1.Affinity) podOpt { return func(p *corev1.Pod) { p.Spec.Affinity = a } }

func withSpread(c corev1.TopologySpreadConstraint) podOpt {
	return func(p *corev1.Pod) { p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c) }
}

// withPriority gives the pod priority class pc (made by priorityClass).
func withPriority(pc string, value int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.PriorityClassName = pc
		p.Spec.Priority = ptr.To(value)
	}
}

// pod builds pod name asking for the target's scheduler, with one
// container requesting requests, selecting and tolerating the spec's
// nodes, terminating at once when deleted.
func (f *fixture) pod(name string, requests corev1.ResourceList, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{}},
		Spec: corev1.PodSpec{
			SchedulerName:                 f.t.SchedulerName,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			NodeSelector:                  map[string]string{SpecLabel: f.id},
			Tolerations:                   []corev1.Toleration{{Key: SpecLabel, Operator: corev1.TolerationOpEqual, Value: f.id, Effect: corev1.TaintEffectNoSchedule}},
			Containers: []corev1.Container{{
				Name: "main", Image: pauseImage,
				Resources: corev1.ResourceRequirements{Requests: requests, Limits: requests},
			}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// createPod creates a pod (see pod).
func (f *fixture) createPod(ctx context.Context, name string, requests corev1.ResourceList, opts ...podOpt) *corev1.Pod {
	GinkgoHelper()
	p, err := f.client.CoreV1().Pods(f.ns).Create(ctx, f.pod(name, requests, opts...), metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating pod %s", name)
	return p
}

// priorityClass creates a PriorityClass of the spec with value and returns
// its name.
func (f *fixture) priorityClass(ctx context.Context, short string, value int32) string {
	GinkgoHelper()
	name := "sched-" + f.id + "-" + short
	_, err := f.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value,
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating PriorityClass %s", name)
	f.priorityClasses = append(f.priorityClasses, name)
	return name
}

// pods lists the spec's pods by name.
func (f *fixture) pods(ctx context.Context) map[string]corev1.Pod {
	GinkgoHelper()
	l, err := f.client.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	out := map[string]corev1.Pod{}
	for _, p := range l.Items {
		out[p.Name] = p
	}
	return out
}

// bound counts the pods with a node.
func bound(pods map[string]corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			n++
		}
	}
	return n
}

// placement maps each pod to its node ("" when pending), for messages.
func placement(pods map[string]corev1.Pod) string {
	var parts []string
	for name, p := range pods {
		node := p.Spec.NodeName
		if node == "" {
			node = "<pending>"
		}
		parts = append(parts, name+"→"+node)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitBound waits until every pod named is bound and returns the spec's
// pods.
func (f *fixture) waitBound(ctx context.Context, names ...string) map[string]corev1.Pod {
	GinkgoHelper()
	var pods map[string]corev1.Pod
	Eventually(ctx, func(g Gomega) {
		pods = f.pods(ctx)
		for _, n := range names {
			p, ok := pods[n]
			g.Expect(ok).To(BeTrue(), "pod %s exists", n)
			g.Expect(p.Spec.NodeName).NotTo(BeEmpty(), "pod %s is bound (pods: %s)", n, placement(pods))
		}
	}).WithTimeout(bindTimeout).WithPolling(200 * time.Millisecond).Should(Succeed())
	return pods
}

// waitBoundCount waits until exactly want of the spec's pods are bound,
// then watches for settle that no more are, and returns the pods.
func (f *fixture) waitBoundCount(ctx context.Context, want int) map[string]corev1.Pod {
	GinkgoHelper()
	var pods map[string]corev1.Pod
	Eventually(ctx, func(g Gomega) {
		pods = f.pods(ctx)
		g.Expect(bound(pods)).To(BeNumerically(">=", want), "pods bound: %s", placement(pods))
	}).WithTimeout(bindTimeout).WithPolling(200 * time.Millisecond).Should(Succeed())
	Consistently(ctx, func(g Gomega) {
		pods = f.pods(ctx)
		g.Expect(bound(pods)).To(Equal(want), "pods bound: %s", placement(pods))
	}).WithTimeout(settle).WithPolling(250 * time.Millisecond).Should(Succeed())
	return pods
}

// waitUnschedulable waits until each pod named carries PodScheduled=False
// with reason Unschedulable (what every scheduler reports for a pod that
// fits nowhere).
func (f *fixture) waitUnschedulable(ctx context.Context, names ...string) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		pods := f.pods(ctx)
		for _, n := range names {
			p := pods[n]
			g.Expect(p.Spec.NodeName).To(BeEmpty(), "pod %s must not be bound", n)
			c := podScheduled(&p)
			g.Expect(c).NotTo(BeNil(), "pod %s has a PodScheduled condition", n)
			g.Expect(c.Status).To(Equal(corev1.ConditionFalse), "pod %s: PodScheduled", n)
			g.Expect(c.Reason).To(Equal(corev1.PodReasonUnschedulable), "pod %s: PodScheduled reason", n)
		}
	}).WithTimeout(bindTimeout).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// expectStaysPending checks for settle that none of the pods named gets a
// node.
func (f *fixture) expectStaysPending(ctx context.Context, names ...string) {
	GinkgoHelper()
	Consistently(ctx, func(g Gomega) {
		pods := f.pods(ctx)
		for _, n := range names {
			g.Expect(pods[n].Spec.NodeName).To(BeEmpty(), "pod %s must stay pending (pods: %s)", n, placement(pods))
		}
	}).WithTimeout(settle).WithPolling(250 * time.Millisecond).Should(Succeed())
}

func podScheduled(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// expectNoOvercommit checks, on every node of the spec that still exists,
// that the requests of the pods bound to it (in any namespace; init
// containers and overhead counted as the kube-scheduler counts them) and
// their number fit its allocatable, for every resource it declares.
func (f *fixture) expectNoOvercommit(ctx context.Context) {
	GinkgoHelper()
	nodes, err := f.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labels.Set{SpecLabel: f.id}.String()})
	Expect(err).NotTo(HaveOccurred())
	all, err := f.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	byNode := map[string][]corev1.Pod{}
	for _, p := range all.Items {
		if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	for _, n := range nodes.Items {
		used := corev1.ResourceList{}
		for i := range byNode[n.Name] {
			for name, q := range resourcehelper.PodRequests(&byNode[n.Name][i], resourcehelper.PodResourcesOptions{}) {
				sum := used[name]
				sum.Add(q)
				used[name] = sum
			}
		}
		used[corev1.ResourcePods] = *resource.NewQuantity(int64(len(byNode[n.Name])), resource.DecimalSI)
		for name, q := range used {
			alloc, ok := n.Status.Allocatable[name]
			if !ok {
				if q.IsZero() {
					continue
				}
				alloc = resource.Quantity{}
			}
			Expect(q.Cmp(alloc)).To(BeNumerically("<=", 0),
				"node %s is overcommitted: its pods request %s %s, it can allocate %s (pods: %s)",
				n.Name, q.String(), name, alloc.String(), podNames(byNode[n.Name]))
		}
	}
}

func podNames(pods []corev1.Pod) string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// resourceQuantity parses q.
func resourceQuantity(q string) *resource.Quantity {
	v := resource.MustParse(q)
	return &v
}

// createRuntimeClass creates a RuntimeClass of the spec with overhead and
// returns its name; an error when the server does not serve node.k8s.io.
func (f *fixture) createRuntimeClass(ctx context.Context, overhead corev1.ResourceList) (string, error) {
	name := "sched-" + f.id
	_, err := f.client.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Handler:    "runc",
		Overhead:   &nodev1.Overhead{PodFixed: overhead},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	DeferCleanup(func(ctx context.Context) {
		_ = f.client.NodeV1().RuntimeClasses().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name, nil
}

// createPDB creates a PodDisruptionBudget of the spec's namespace selecting
// sel, with status.disruptionsAllowed set to allowed (what the disruption
// controller, which the suite does not run, would compute), and deletes it
// after the spec.
func (f *fixture) createPDB(ctx context.Context, name string, sel map[string]string, allowed int32) {
	GinkgoHelper()
	pdbs := f.client.PolicyV1().PodDisruptionBudgets(f.ns)
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: sel},
			MaxUnavailable: ptr.To(intstr.FromInt32(allowed)),
		},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating PodDisruptionBudget %s", name)
	DeferCleanup(func(ctx SpecContext) {
		if err := pdbs.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred(), "deleting PodDisruptionBudget %s", name)
		}
	})
	pdb.Status.DisruptionsAllowed = allowed
	pdb.Status.ObservedGeneration = pdb.Generation
	_, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
	Expect(err).NotTo(HaveOccurred(), "setting the status of PodDisruptionBudget %s", name)
}
