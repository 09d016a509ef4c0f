package apiserver_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

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
// with a FailedScheduling event, and logs no list, watch or permission
// failure. It needs the binary: KUBELAB_KUBE_SCHEDULER=/path/to/kube-scheduler
// (build it as README.md "Run the upstream kube-scheduler against kubelab"
// describes).
func TestUpstreamKubeScheduler(t *testing.T) {
	bin := os.Getenv(kubeSchedulerEnv)
	if bin == "" {
		t.Skip(kubeSchedulerEnv + " is not set: set it to an upstream kube-scheduler binary " +
			"(README.md: Run the upstream kube-scheduler against kubelab) to run it against kubelab's API server")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", kubeSchedulerEnv, err)
	}
	s := apiservertest.StartSecure(t, nil)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	if err := s.CA.WriteClientKubeconfig(kubeconfig, s.HTTP.URL, pki.SchedulerIdentity()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := s.Client

	// Three Ready nodes with room for 4 CPUs, 8Gi and 110 pods each.
	const nodes = 3
	for i := range nodes {
		createReadyNode(ctx, t, cs, fmt.Sprintf("node-%d", i))
	}

	log := &syncBuffer{}
	cmd := exec.Command(bin,
		"--kubeconfig", kubeconfig,
		"--leader-elect=true",
		"--kube-api-qps=500", "--kube-api-burst=1000",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(freePort(t)),
		"-v=2",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("kube-scheduler log:\n%s", log.String())
		}
	})

	// Pods that fit, and one that fits nowhere.
	const fitting = 12
	for i := range fitting {
		createPod(ctx, t, cs, fmt.Sprintf("fits-%d", i), "250m", "256Mi", nil)
	}
	createPod(ctx, t, cs, "too-big", "100", "1Gi", nil)

	// Every fitting pod is bound and reports PodScheduled=True.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("kube-scheduler exited: %v", err)
		default:
		}
		for i := range fitting {
			p, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("fits-%d", i), metav1.GetOptions{})
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
		p, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("fits-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		perNode[p.Spec.NodeName]++
	}
	for n := range perNode {
		if !strings.HasPrefix(n, "node-") {
			t.Errorf("pod bound to unknown node %q", n)
		}
	}
	t.Logf("pods per node: %v", perNode)

	// The pod that fits nowhere stays Pending, Unschedulable, with an event.
	wantMsg := fmt.Sprintf("0/%d nodes are available", nodes)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "too-big", metav1.GetOptions{})
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
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": "too-big", "involvedObject.namespace": "default",
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
		ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPod(ctx, t, cs, "vip", "3500m", "256Mi", func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" })
	victims := map[string]string{} // name → node
	var vip *corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
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
			err := cs.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
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

	// Nothing the scheduler asked for was missing or forbidden.
	running := log.String()
	stop()
	for _, line := range strings.Split(running, "\n") {
		for _, p := range schedulerLogProblems {
			if strings.Contains(line, p) {
				t.Errorf("kube-scheduler log: %s", line)
				break
			}
		}
	}
}

// createReadyNode creates a Ready, untainted node with 4 CPUs, 8Gi and 110
// pods allocatable, as a kubelet would register it.
func createReadyNode(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
	}, metav1.CreateOptions{})
	if err != nil {
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

// createPod creates a one-container pod in default requesting cpu and
// memory; mutate, when non-nil, adjusts it first.
func createPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name, cpu, memory string, mutate func(*corev1.Pod)) {
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
	_, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
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
