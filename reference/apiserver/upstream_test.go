package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
)

// kubeSchedulerEnv names the upstream kube-scheduler binary that
// TestUpstreamKubeScheduler runs against kubelab's API server.
const kubeSchedulerEnv = "KUBELAB_KUBE_SCHEDULER"

// schedulerLogProblems are log fragments of the upstream kube-scheduler that
// mean kubelab's API server refused or lacked something it needs: a
// resource its informers list, a permission, a decodable response.
var schedulerLogProblems = []string{
	"failed to list",
	"failed to watch",
	"forbidden",
	"the server could not find the requested resource",
	"Failed to watch",
	"unable to decode",
	"failed to create event",
	"Server rejected event",
	"error retrieving resource lock",
	"error initially creating leader election record",
	`configmap \"extension-apiserver-authentication\" not found`, // as klog quotes an err
}

// syncBuffer is an io.Writer safe for a child process's stdout and stderr
// and the test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUpstreamKubeScheduler runs the real kube-scheduler, unchanged, against
// kubelab's secure API server as system:kube-scheduler (bootstrap RBAC, a
// client certificate, leader election through a Lease) and checks that it
// binds pods that fit, reports the one that fits nowhere as Unschedulable
// with a FailedScheduling event, preempts lower-priority pods for a
// higher-priority one, and logs no list, watch or permission failure. It
// needs the binary: KUBELAB_KUBE_SCHEDULER=/path/to/kube-scheduler (build it
// as README.md "Run the upstream kube-scheduler against kubelab" describes).
func TestUpstreamKubeScheduler(t *testing.T) {
	bin := kubeSchedulerBinary(t)
	s := apiservertest.StartSecure(t, nil)
	kubeconfig := filepath.Join(t.TempDir(), "scheduler.kubeconfig")
	if err := s.CA.WriteClientKubeconfig(kubeconfig, s.HTTP.URL, pki.SchedulerIdentity()); err != nil {
		t.Fatal(err)
	}
	// The scheduler authenticates and authorizes requests to its own
	// /metrics by delegation: the client CA from
	// kube-system/extension-apiserver-authentication, then a
	// SubjectAccessReview. The admin may read them, alice may not.
	checkMetrics := func(t *testing.T, url string) {
		for _, c := range []struct {
			id   pki.Identity
			want int
		}{{pki.AdminIdentity(), http.StatusOK}, {pki.Identity{User: "alice"}, http.StatusForbidden}} {
			kp, err := s.CA.IssueClient(c.id)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := kp.TLSCertificate()
			if err != nil {
				t.Fatal(err)
			}
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, // the scheduler's self-signed serving certificate
			}}}
			resp, err := hc.Get(url + "/metrics")
			if err != nil {
				t.Fatalf("GET %s/metrics as %s: %v", url, c.id.User, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("GET /metrics of kube-scheduler as %s: %d, want %d: %.200s", c.id.User, resp.StatusCode, c.want, body)
			} else if c.want == http.StatusOK && !bytes.Contains(body, []byte("scheduler_schedule_attempts_total")) {
				t.Errorf("kube-scheduler /metrics has no scheduler_schedule_attempts_total: %.300s", body)
			}
		}
	}
	runKubeSchedulerScenario(t, bin, s.Client, kubeconfig, "default", "", nil, checkMetrics)
}

// referenceKubeconfigEnv names the admin kubeconfig of a real Kubernetes
// cluster (without a scheduler of its own) on which
// TestUpstreamKubeSchedulerReference runs the same scenario, to show that
// the scenario expects Kubernetes' behaviour and not kubelab's.
const referenceKubeconfigEnv = "KUBELAB_REFERENCE_KUBECONFIG"

// TestUpstreamKubeSchedulerReference runs the scenario of
// TestUpstreamKubeScheduler against the API server of
// KUBELAB_REFERENCE_KUBECONFIG (e.g. an upstream kube-apiserver), with the
// kube-scheduler using that kubeconfig too. Its nodes, namespace and
// PriorityClass carry a random suffix and are deleted afterwards.
func TestUpstreamKubeSchedulerReference(t *testing.T) {
	bin := kubeSchedulerBinary(t)
	kubeconfig := os.Getenv(referenceKubeconfigEnv)
	if kubeconfig == "" {
		t.Skip(referenceKubeconfigEnv + " is not set: set it to the admin kubeconfig of a real API server to run the kube-scheduler scenario there")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	suffix := "-" + utilrand.String(6)
	ctx := context.Background()
	ns := "kube-scheduler" + suffix
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount, which a controller
	// manager would create.
	_, err = cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		_ = cs.SchedulingV1().PriorityClasses().Delete(ctx, "high"+suffix, metav1.DeleteOptions{})
		for i := range schedulerScenarioNodes {
			_ = cs.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("node-%d%s", i, suffix), metav1.DeleteOptions{})
		}
	})
	// A shared cluster may hold other terminating namespaces whose pods
	// the scheduler fails to bind; that is not this scenario's concern.
	otherTerminating := func(line string) bool {
		return strings.Contains(line, "unable to create new content in namespace") && !strings.Contains(line, ns)
	}
	runKubeSchedulerScenario(t, bin, cs, kubeconfig, ns, suffix, otherTerminating, nil)
}

// kubeSchedulerBinary is $KUBELAB_KUBE_SCHEDULER; the test is skipped
// without it.
func kubeSchedulerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(kubeSchedulerEnv)
	if bin == "" {
		t.Skip(kubeSchedulerEnv + " is not set: set it to an upstream kube-scheduler binary " +
			"(README.md: Run the upstream kube-scheduler against kubelab) to run it against kubelab's API server")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", kubeSchedulerEnv, err)
	}
	return bin
}

// schedulerScenarioNodes is how many nodes runKubeSchedulerScenario registers.
const schedulerScenarioNodes = 3

// runKubeSchedulerScenario registers three Ready nodes named node-I+suffix
// labelled kubelab.io/scenario=suffix, starts bin with kubeconfig, and
// schedules pods in ns that select those nodes: twelve that fit, one that
// fits nowhere, and one of higher priority (PriorityClass high+suffix) that
// fits only by preempting. The scheduler authenticates and authorizes
// requests to its HTTPS port by delegation to the API server (kubeconfig);
// checkServing, when non-nil, is called with that port's URL once the
// scheduler leads. Log lines of the scheduler for which ignoreLog (when
// non-nil) is true are not counted as problems.
func runKubeSchedulerScenario(t *testing.T, bin string, cs kubernetes.Interface, kubeconfig, ns, suffix string,
	ignoreLog func(string) bool, checkServing func(t *testing.T, url string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	selector := map[string]string{"kubelab.io/scenario": "kube-scheduler" + suffix}
	onScenarioNodes := func(p *corev1.Pod) { p.Spec.NodeSelector = selector }

	// Three Ready nodes with room for 4 CPUs, 8Gi and 110 pods each.
	for i := range schedulerScenarioNodes {
		createReadyNode(ctx, t, cs, fmt.Sprintf("node-%d%s", i, suffix), selector)
	}
	allNodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sched := startKubeScheduler(t, bin, kubeconfig, "kube-scheduler")

	// Pods that fit, and one that fits nowhere.
	const fitting = 12
	for i := range fitting {
		createPod(ctx, t, cs, ns, fmt.Sprintf("fits-%d", i), "250m", "256Mi", onScenarioNodes)
	}
	createPod(ctx, t, cs, ns, "too-big", "100", "1Gi", onScenarioNodes)

	// Every fitting pod is bound and reports PodScheduled=True.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case <-sched.exited:
			return false, fmt.Errorf("kube-scheduler exited: %v", sched.err)
		default:
		}
		for i := range fitting {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("fits-%d", i), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Spec.NodeName == "" || podScheduled(p) == nil || podScheduled(p).Status != corev1.ConditionTrue {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("fitting pods not all scheduled: %v", err)
	}
	perNode := map[string]int{}
	for i := range fitting {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("fits-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		perNode[p.Spec.NodeName]++
	}
	for n := range perNode {
		if !strings.HasPrefix(n, "node-") || !strings.HasSuffix(n, suffix) {
			t.Errorf("pod bound to unknown node %q", n)
		}
	}
	t.Logf("pods per node: %v", perNode)

	// The pod that fits nowhere stays Pending, Unschedulable, with an event.
	wantMsg := fmt.Sprintf("0/%d nodes are available", len(allNodes.Items))
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "too-big", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podScheduled(p)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
			return false, nil
		}
		if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
			return false, fmt.Errorf("too-big: nodeName %q phase %s", p.Spec.NodeName, p.Status.Phase)
		}
		if !strings.HasPrefix(c.Message, wantMsg) {
			return false, fmt.Errorf("too-big: PodScheduled message %q, want prefix %q", c.Message, wantMsg)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("too-big is not reported Unschedulable: %v", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		// As kubectl describe asks for them.
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": "too-big", "involvedObject.namespace": ns,
		}.AsSelector().String()})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "FailedScheduling" && e.Type == corev1.EventTypeWarning && strings.HasPrefix(e.Message, wantMsg) {
				t.Logf("event: %s %s: %s", e.Type, e.Reason, e.Message)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no FailedScheduling event %q... for too-big: %v", wantMsg, err)
	}

	// Leader election went through a Lease.
	lease, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("lease kube-system/kube-scheduler: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("lease kube-system/kube-scheduler has no holder: %+v", lease.Spec)
	}

	// Preemption: a high-priority pod that fits on a node only once some of
	// its pods are gone. The scheduler marks the victims DisruptionTarget
	// and deletes them gracefully; with no kubelet here, the test finishes
	// their deletion as a kubelet would.
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: "high" + suffix}, Value: 1000,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPod(ctx, t, cs, ns, "vip", "3500m", "256Mi", func(p *corev1.Pod) { onScenarioNodes(p); p.Spec.PriorityClassName = "high" + suffix })
	victims := map[string]string{} // name → node
	var vip *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Name == "vip" && p.Spec.NodeName != "" {
				vip = p
			}
			if p.DeletionTimestamp == nil {
				continue
			}
			if _, seen := victims[p.Name]; !seen {
				victims[p.Name] = p.Spec.NodeName
				if c := podCondition(p, corev1.DisruptionTarget); c == nil || c.Status != corev1.ConditionTrue || c.Reason != corev1.PodReasonPreemptionByScheduler {
					t.Errorf("victim %s: DisruptionTarget condition %+v, want True/%s", p.Name, c, corev1.PodReasonPreemptionByScheduler)
				}
			}
			err := cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			if err != nil && !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return vip != nil, nil
	})
	if err != nil {
		t.Fatalf("vip was not scheduled by preemption (victims %v): %v", victims, err)
	}
	if vip.Spec.Priority == nil || *vip.Spec.Priority != 1000 {
		t.Errorf("vip priority %v, want 1000 from PriorityClass high", vip.Spec.Priority)
	}
	if len(victims) == 0 {
		t.Errorf("vip scheduled on %s without preempting anything", vip.Spec.NodeName)
	}
	for name, node := range victims {
		if node != vip.Spec.NodeName || !strings.HasPrefix(name, "fits-") {
			t.Errorf("victim %s on %s; vip is on %s", name, node, vip.Spec.NodeName)
		}
	}
	t.Logf("vip on %s, preempted %v", vip.Spec.NodeName, victims)

	if checkServing != nil {
		checkServing(t, "https://127.0.0.1:"+strconv.Itoa(sched.port))
	}

	// Nothing the scheduler asked for was missing or forbidden.
	running := sched.log.String()
	sched.stop(syscall.SIGTERM)
	for _, line := range strings.Split(running, "\n") {
		if ignoreLog != nil && ignoreLog(line) {
			continue
		}
		for _, p := range schedulerLogProblems {
			if strings.Contains(line, p) {
				t.Errorf("kube-scheduler log: %s", line)
				break
			}
		}
	}
}

// TestAuthenticationConfigMap: the secure server publishes its client CA in
// kube-system/extension-apiserver-authentication, where components that
// authenticate by delegation (kube-scheduler, kube-controller-manager) read
// it, and system:kube-scheduler may read it.
func TestAuthenticationConfigMap(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	sched := s.ClientFor(t, pki.SchedulerIdentity())
	cm, err := sched.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, apiserver.AuthenticationConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the scheduler reads the authentication ConfigMap: %v", err)
	}
	if cm.Data["client-ca-file"] != string(s.CA.CertPEM) {
		t.Errorf("client-ca-file = %q, want the cluster CA", cm.Data["client-ca-file"])
	}
}

// TestUpstreamKubeSchedulerFailover: two replicas of the upstream
// kube-scheduler elect one leader through the Lease kube-system/kube-scheduler
// on kubelab's API server; when the leader is killed (so it cannot release
// the Lease), the other takes the Lease over once it expires and schedules
// the pods created since.
func TestUpstreamKubeSchedulerFailover(t *testing.T) {
	bin := kubeSchedulerBinary(t)
	s := apiservertest.StartSecure(t, nil)
	kubeconfig := filepath.Join(t.TempDir(), "scheduler.kubeconfig")
	if err := s.CA.WriteClientKubeconfig(kubeconfig, s.HTTP.URL, pki.SchedulerIdentity()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := s.Client
	createReadyNode(ctx, t, cs, "node-0", nil)
	fast := []string{"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"}
	a := startKubeScheduler(t, bin, kubeconfig, "kube-scheduler-a", fast...)
	b := startKubeScheduler(t, bin, kubeconfig, "kube-scheduler-b", fast...)
	leads := func(p *schedulerProcess) bool { return strings.Contains(p.log.String(), "Successfully acquired lease") }

	createPod(ctx, t, cs, "default", "before", "100m", "64Mi", nil)
	waitBound(ctx, t, cs, "default", "before")
	var leader, standby *schedulerProcess
	switch {
	case leads(a) && !leads(b):
		leader, standby = a, b
	case leads(b) && !leads(a):
		leader, standby = b, a
	default:
		t.Fatalf("want exactly one leader: a leads %v, b leads %v", leads(a), leads(b))
	}
	before, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	leader.stop(syscall.SIGKILL)
	createPod(ctx, t, cs, "default", "after", "100m", "64Mi", nil)
	waitBound(ctx, t, cs, "default", "after")
	if !leads(standby) {
		t.Errorf("%s bound the pod without logging that it acquired the lease", standby.name)
	}
	after, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(after.Spec.HolderIdentity, "") == ptr.Deref(before.Spec.HolderIdentity, "") {
		t.Errorf("the lease is still held by %q after its holder died", ptr.Deref(after.Spec.HolderIdentity, ""))
	}
	if ptr.Deref(after.Spec.LeaseTransitions, 0) <= ptr.Deref(before.Spec.LeaseTransitions, 0) {
		t.Errorf("leaseTransitions %v after the takeover, %v before", after.Spec.LeaseTransitions, before.Spec.LeaseTransitions)
	}
	t.Logf("%s took the lease over from %s: holder %q → %q", standby.name, leader.name,
		ptr.Deref(before.Spec.HolderIdentity, ""), ptr.Deref(after.Spec.HolderIdentity, ""))
}

// waitBound waits until pod ns/name has a node.
func waitBound(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != "", err
	})
	if err != nil {
		t.Fatalf("pod %s/%s not bound: %v", ns, name, err)
	}
}

// schedulerProcess is a running upstream kube-scheduler.
type schedulerProcess struct {
	name   string
	cmd    *exec.Cmd
	log    *syncBuffer // its stdout and stderr
	port   int         // its HTTPS port on 127.0.0.1
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

// startKubeScheduler starts bin with kubeconfig (also for delegated
// authentication and authorization), leader election on and a raised
// client QPS, plus args. It is stopped, and its log shown if t failed, when
// t ends.
func startKubeScheduler(t *testing.T, bin, kubeconfig, name string, args ...string) *schedulerProcess {
	t.Helper()
	p := &schedulerProcess{name: name, log: &syncBuffer{}, port: freePort(t), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{
		"--kubeconfig", kubeconfig,
		"--leader-elect=true",
		"--kube-api-qps=500", "--kube-api-burst=1000",
		"--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(p.port),
		"-v=2",
	}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	return p
}

// stop sends sig to the scheduler and waits for it to exit (killing it
// after 20s).
func (p *schedulerProcess) stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// createReadyNode creates a Ready, untainted node with 4 CPUs, 8Gi and 110
// pods allocatable, as a kubelet would register it.
func createReadyNode(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[corev1.LabelHostname] = name
	if n, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Phase: corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPod creates a one-container pod in ns requesting cpu and memory;
// mutate, when non-nil, adjusts it first.
func createPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, cpu, memory string, mutate func(*corev1.Pod)) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
			}},
		}}},
	}
	if mutate != nil {
		mutate(p)
	}
	_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// podScheduled is p's PodScheduled condition, or nil.
func podScheduled(p *corev1.Pod) *corev1.PodCondition {
	return podCondition(p, corev1.PodScheduled)
}

// podCondition is p's condition of type ct, or nil.
func podCondition(p *corev1.Pod, ct corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == ct {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestUpstreamPodResources: behaviours found by sending the same requests
// to kube-apiserver v1.37.2 and to kubelab. A pod's limits without requests
// become its requests (what schedulers count), on pods but not templates;
// a request above its limit or a negative quantity is 422 with upstream's
// fields; a pod update may not add containers.
func TestUpstreamPodResources(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	limits := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	container := corev1.Container{Name: "c", Image: "i", Resources: corev1.ResourceRequirements{Limits: limits}}
	p, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.Containers[0].Resources.Requests; !apiequality.Semantic.DeepEqual(got, limits) {
		t.Errorf("requests %v, want the limits %v", got, limits)
	}
	labels := map[string]string{"app": "d"}
	d, err := s.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Resources.Requests; got != nil {
		t.Errorf("a template's requests are not defaulted, got %v", got)
	}

	for _, c := range []struct {
		requests, limits corev1.ResourceList
		fields           []string
		detail           string
	}{
		{corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			[]string{"spec.containers[0].resources.requests"}, "must be less than or equal to cpu limit of 1"},
		{nil, corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1")},
			// the request defaulted from the limit is negative too
			[]string{"spec.containers[0].resources.limits[memory]", "spec.containers[0].resources.requests[memory]"}, "must be greater than or equal to 0"},
	} {
		bad := container.DeepCopy()
		bad.Resources = corev1.ResourceRequirements{Requests: c.requests, Limits: c.limits}
		_, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{*bad}}}, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("requests %v limits %v: want 422, got %v", c.requests, c.limits, err)
			continue
		}
		var fields []string
		for _, cause := range err.(apierrors.APIStatus).Status().Details.Causes {
			fields = append(fields, cause.Field)
			if !strings.Contains(cause.Message, c.detail) {
				t.Errorf("%s: %q, want %q", cause.Field, cause.Message, c.detail)
			}
		}
		if !slices.Equal(fields, c.fields) {
			t.Errorf("requests %v limits %v: fields %v, want %v", c.requests, c.limits, fields, c.fields)
		}
	}

	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "extra", Image: "i"})
	_, err = pods.Update(ctx, p, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.containers: Forbidden: pod updates may not add or remove containers") {
		t.Errorf("adding a container: want 422 on spec.containers, got %v", err)
	}
}

// TestUpstreamNegativeListLimit: limit=-1 is no limit (200 with every
// item), as kube-apiserver; limit=abc is 400.
func TestUpstreamNegativeListLimit(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var l corev1.ConfigMapList
	if err := s.Client.CoreV1().RESTClient().Get().Namespace("default").Resource("configmaps").Param("limit", "-1").Do(ctx).Into(&l); err != nil {
		t.Fatalf("limit=-1: %v", err)
	}
	if len(l.Items) != 2 || l.Continue != "" {
		t.Errorf("limit=-1: %d items, continue %q; want 2 and none", len(l.Items), l.Continue)
	}
	err := s.Client.CoreV1().RESTClient().Get().Namespace("default").Resource("configmaps").Param("limit", "abc").Do(ctx).Error()
	if !apierrors.IsBadRequest(err) {
		t.Errorf("limit=abc: want 400, got %v", err)
	}
}

// TestUpstreamDeleteResponse: an immediate delete answers with a Status
// naming the object (details.kind is the resource, with its group and uid)
// for most kinds, and with the deleted object for pods, services,
// namespaces and the other kinds upstream marks ReturnDeletedObject.
func TestUpstreamDeleteResponse(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	cm, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st metav1.Status
	if err := s.Client.CoreV1().RESTClient().Delete().Namespace("default").Resource("configmaps").Name("c").Do(ctx).Into(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != metav1.StatusSuccess || st.Details == nil || st.Details.Name != "c" || st.Details.Kind != "configmaps" || st.Details.UID != cm.UID {
		t.Errorf("configmap delete answered %+v (details %+v)", st, st.Details)
	}
	labels := map[string]string{"app": "d"}
	if _, err := s.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st = metav1.Status{}
	if err := s.Client.AppsV1().RESTClient().Delete().Namespace("default").Resource("deployments").Name("d").Do(ctx).Into(&st); err != nil {
		t.Fatal(err)
	}
	if st.Details == nil || st.Details.Group != "apps" || st.Details.Kind != "deployments" {
		t.Errorf("deployment delete answered %+v (details %+v)", st, st.Details)
	}
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Client.CoreV1().RESTClient().Delete().Namespace("default").Resource("pods").Name("p").Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := json.Unmarshal(raw, &p); err != nil || p.Kind != "Pod" || p.Name != "p" {
		t.Errorf("pod delete answered %.200s, want the Pod", raw)
	}
}

// TestUpstreamSchedulingValidation: what kube-apiserver v1.37.2 refuses of
// the fields schedulers read — tolerations, node selectors, empty required
// node affinity, node taints, scheduling gates on a bound pod, new gates,
// binding a gated pod — and of priority classes, leases and bindings'
// roleRef, kubelab refuses too, with the same field.
func TestUpstreamSchedulingValidation(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	cs := s.Client
	pod := func(name string, mutate func(*corev1.PodSpec)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		mutate(&p.Spec)
		return p
	}
	wantInvalid := func(what string, err error, field string) {
		t.Helper()
		if !apierrors.IsInvalid(err) {
			t.Errorf("%s: want 422, got %v", what, err)
			return
		}
		for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
			if c.Field == field {
				return
			}
		}
		t.Errorf("%s: no cause on %s: %v", what, field, err)
	}
	for _, c := range []struct {
		name, field string
		mutate      func(*corev1.PodSpec)
	}{
		{"exists-with-value", "spec.tolerations[0].operator", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}},
		{"bad-effect", "spec.tolerations[0].effect", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: "Bogus"}}
		}},
		{"bad-selector", "spec.nodeSelector", func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"bad key!": "v"} }},
		{"no-terms", "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}},
		{"gated-bound", "spec.nodeName", func(s *corev1.PodSpec) {
			s.SchedulingGates, s.NodeName = []corev1.PodSchedulingGate{{Name: "g"}}, "n1"
		}},
	} {
		_, err := cs.CoreV1().Pods("default").Create(ctx, pod(c.name, c.mutate), metav1.CreateOptions{})
		wantInvalid("pod "+c.name, err, c.field)
	}

	gated, err := cs.CoreV1().Pods("default").Create(ctx, pod("gated", func(s *corev1.PodSpec) { s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}} }), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = cs.CoreV1().Pods("default").Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "gated"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "non-empty .spec.schedulingGates") {
		t.Errorf("binding a gated pod: want 409, got %v", err)
	}
	gated.Spec.SchedulingGates = append(gated.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: "h"})
	_, err = cs.CoreV1().Pods("default").Update(ctx, gated, metav1.UpdateOptions{})
	wantInvalid("adding a scheduling gate", err, "spec.schedulingGates[1].name")
	gated.Spec.SchedulingGates = nil
	if _, err = cs.CoreV1().Pods("default").Update(ctx, gated, metav1.UpdateOptions{}); err != nil {
		t.Errorf("removing the scheduling gates: %v", err)
	}

	_, err = cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tainted"},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: "Bogus"}}}}, metav1.CreateOptions{})
	wantInvalid("node taint effect", err, "metadata.taints[0].effect")

	_, err = cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Value: 2000000000}, metav1.CreateOptions{})
	wantInvalid("user priority above 1e9", err, "value")
	_, err = cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 10}, metav1.CreateOptions{})
	wantInvalid("system- prefix", err, "metadata.name")
	pc, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Value: 10}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc.Value = 11
	_, err = cs.SchedulingV1().PriorityClasses().Update(ctx, pc, metav1.UpdateOptions{})
	wantInvalid("changing a priority class's value", err, "value")

	_, err = cs.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"},
		Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: ptr.To[int32](0)}}, metav1.CreateOptions{})
	wantInvalid("lease duration 0", err, "spec.leaseDurationSeconds")

	rb, err := cs.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rb"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "u"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb.RoleRef.Name = "edit"
	_, err = cs.RbacV1().RoleBindings("default").Update(ctx, rb, metav1.UpdateOptions{})
	wantInvalid("changing a binding's roleRef", err, "roleRef")
}

// TestUpstreamFieldSelectors: services select on spec.clusterIP and
// spec.type, jobs on status.successful, as upstream.
func TestUpstreamFieldSelectors(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	svcs, err := s.Client.CoreV1().Services("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.type=ClusterIP,metadata.name=kubernetes"})
	if err != nil || len(svcs.Items) != 1 {
		t.Fatalf("services by spec.type: %v %v", svcs, err)
	}
	ip := svcs.Items[0].Spec.ClusterIP
	if l, err := s.Client.CoreV1().Services("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.clusterIP=" + ip}); err != nil || len(l.Items) != 1 {
		t.Errorf("services by spec.clusterIP=%s: %v %v", ip, l, err)
	}
	if l, err := s.Client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{FieldSelector: "status.successful=0"}); err != nil || len(l.Items) != 0 {
		t.Errorf("jobs by status.successful: %v %v", l, err)
	}
}

// TestUpstreamPolicyValidation: a Role rule without verbs and a
// PodDisruptionBudget with both minAvailable and maxUnavailable are 422,
// as upstream.
func TestUpstreamPolicyValidation(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	_, err := s.Client.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "rules[0].verbs") {
		t.Errorf("role rule without verbs: want 422 on rules[0].verbs, got %v", err)
	}
	one := intstr.FromInt32(1)
	_, err = s.Client.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, MaxUnavailable: &one, Selector: &metav1.LabelSelector{}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "cannot be both set") {
		t.Errorf("PDB with minAvailable and maxUnavailable: want 422, got %v", err)
	}
}
