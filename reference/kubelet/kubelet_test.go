package kubelet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelab/kubelab/plugins/runtime/hollow"
	"github.com/kubelab/kubelab/reference/kubelet"
)

// networkDown is a runtime whose network is not ready.
type networkDown struct{ *hollow.Runtime }

func (networkDown) Status(context.Context, bool) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: false, Reason: "NoCNI", Message: "no network plugin"},
	}}}, nil
}

// startKubelet runs a kubelet with fast loops over rt and a fake API.
func startKubelet(t *testing.T, rt kubelet.Runtime) (kubernetes.Interface, context.Context) {
	t.Helper()
	client := fake.NewClientset()
	ctx, _ := runKubelet(t, client, rt)
	return client, ctx
}

// runKubelet runs a kubelet over client and rt until the returned stop is
// called (or the test ends); mutate adjusts its config.
func runKubelet(t *testing.T, client kubernetes.Interface, rt kubelet.Runtime, mutate ...func(*kubelet.Config)) (context.Context, func()) {
	ctx, stop, _ := runKubeletObject(t, client, rt, mutate...)
	return ctx, stop
}

// runKubeletObject is runKubelet, also returning the Kubelet.
func runKubeletObject(t *testing.T, client kubernetes.Interface, rt kubelet.Runtime, mutate ...func(*kubelet.Config)) (context.Context, func(), *kubelet.Kubelet) {
	t.Helper()
	cfg := kubelet.Config{
		NodeName: "n1", Client: client, Runtime: rt, RootDir: t.TempDir(), InternalIP: "192.0.2.1", PodCIDR: "10.1.0.0/24",
		Capacity:                  corev1.ResourceList{corev1.ResourcePods: *resourceQuantity(110)},
		NodeStatusUpdateFrequency: 20 * time.Millisecond, LeaseRenewInterval: 20 * time.Millisecond, RelistPeriod: 20 * time.Millisecond,
		Backoff: kubelet.BackoffPolicy{Initial: 100 * time.Millisecond, Max: 200 * time.Millisecond},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	k, err := kubelet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ctx, stop, k
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func nodeReady(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func TestKubeletRegistersAndHeartbeats(t *testing.T) {
	client, ctx := startKubelet(t, hollow.New(hollow.Options{}))
	var node *corev1.Node
	eventually(t, ctx, "node Ready", func() bool {
		n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		node = n
		return err == nil && nodeReady(n).Status == corev1.ConditionTrue
	})
	if node.Spec.PodCIDR != "10.1.0.0/24" || node.Labels[corev1.LabelHostname] != "n1" || node.Status.Addresses[0].Address != "192.0.2.1" {
		t.Errorf("node %+v", node)
	}
	if node.Status.NodeInfo.ContainerRuntimeVersion != hollow.RuntimeName+"://"+hollow.Version {
		t.Errorf("runtime version %q", node.Status.NodeInfo.ContainerRuntimeVersion)
	}
	var first *metav1.MicroTime
	eventually(t, ctx, "lease renewed", func() bool {
		l, err := client.CoordinationV1().Leases(kubelet.NodeLeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false
		}
		if first == nil {
			first = l.Spec.RenewTime
			return false
		}
		return l.Spec.RenewTime.After(first.Time) && *l.Spec.LeaseDurationSeconds == 40
	})
}

func TestKubeletNodeNotReadyWhenRuntimeNetworkIsNot(t *testing.T) {
	client, ctx := startKubelet(t, networkDown{hollow.New(hollow.Options{})})
	eventually(t, ctx, "node NotReady", func() bool {
		n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false
		}
		r := nodeReady(n)
		return r.Status == corev1.ConditionFalse && r.Reason == kubelet.ReasonKubeletNotReady && r.Message != ""
	})
}

func hollowPod(name string, policy corev1.RestartPolicy, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name), Annotations: annotations},
		Spec: corev1.PodSpec{NodeName: "n1", RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "main", Image: "img:1"}}},
	}
}

func TestKubeletRunsPodsOnTheHollowRuntime(t *testing.T) {
	rt := hollow.New(hollow.Options{})
	client, ctx := startKubelet(t, rt)
	pods := client.CoreV1().Pods("default")
	get := func(name string) *corev1.Pod {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return &corev1.Pod{}
		}
		return p
	}
	for _, p := range []*corev1.Pod{
		hollowPod("web", corev1.RestartPolicyAlways, nil),
		hollowPod("crash", corev1.RestartPolicyAlways, map[string]string{hollow.AnnotationRunFor: "20ms", hollow.AnnotationExitCode: "1"}),
		hollowPod("job", corev1.RestartPolicyNever, map[string]string{hollow.AnnotationRunFor: "20ms"}),
		hollowPod("fail", corev1.RestartPolicyOnFailure, map[string]string{hollow.AnnotationRunFor: "20ms", hollow.AnnotationExitCode: "2"}),
	} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "web Running with an IP", func() bool {
		p := get("web")
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
	eventually(t, ctx, "job Succeeded", func() bool { return get("job").Status.Phase == corev1.PodSucceeded })
	sawBackoff := map[string]bool{}
	for _, name := range []string{"crash", "fail"} {
		eventually(t, ctx, name+" in CrashLoopBackOff, restarted twice", func() bool {
			cs := get(name).Status.ContainerStatuses
			if len(cs) != 1 {
				return false
			}
			if w := cs[0].State.Waiting; w != nil && w.Reason == kubelet.ReasonCrashLoopBackOff {
				sawBackoff[name] = true
			}
			return sawBackoff[name] && cs[0].RestartCount >= 2
		})
	}
	if p := get("fail"); p.Status.Phase != corev1.PodRunning {
		t.Errorf("an OnFailure pod that restarts is %s, want Running", p.Status.Phase)
	}
	eventually(t, ctx, "events: Pulled, Created, Started, BackOff", func() bool {
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "crash" && e.Source.Component == "kubelet" && e.InvolvedObject.FieldPath == "spec.containers{main}" {
				seen[e.Reason] = true
			}
		}
		return seen[kubelet.EventPulled] && seen[kubelet.EventCreated] && seen[kubelet.EventStarted] && seen[kubelet.EventBackOff]
	})

	// A pod that goes from the API (the fake deletes at once) is cleaned
	// from the runtime.
	web := get("web")
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "web's sandbox removed", func() bool {
		sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{kubelet.LabelPodUID: string(web.UID)}})
		return err == nil && len(sbs) == 0
	})
}

func resourceQuantity(n int64) *resource.Quantity { return resource.NewQuantity(n, resource.DecimalSI) }

// execSays answers ExecSync with the exit status its first argument
// names: "ok" succeeds, anything else fails.
type execSays struct{ *hollow.Runtime }

func (execSays) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	if cmd[0] == "ok" {
		return nil, nil, nil
	}
	return nil, nil, errors.New("exit status 1")
}

func execProbe(word string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{word}}}, PeriodSeconds: 1, FailureThreshold: 1}
}

func TestKubeletProbes(t *testing.T) {
	client, ctx := startKubelet(t, execSays{hollow.New(hollow.Options{})})
	pods := client.CoreV1().Pods("default")
	ready := hollowPod("ready", corev1.RestartPolicyAlways, nil)
	ready.Spec.Containers[0].ReadinessProbe = execProbe("ok")
	unready := hollowPod("unready", corev1.RestartPolicyAlways, nil)
	unready.Spec.Containers[0].ReadinessProbe = execProbe("fail")
	unready.Spec.Containers[0].LivenessProbe = execProbe("ok")
	dying := hollowPod("dying", corev1.RestartPolicyAlways, nil)
	dying.Spec.Containers[0].LivenessProbe = execProbe("fail")
	starting := hollowPod("starting", corev1.RestartPolicyAlways, nil)
	starting.Spec.Containers[0].StartupProbe = execProbe("fail")
	starting.Spec.Containers[0].StartupProbe.FailureThreshold = 1000
	starting.Spec.Containers[0].ReadinessProbe = execProbe("ok")
	for _, p := range []*corev1.Pod{ready, unready, dying, starting} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	status := func(name string) corev1.ContainerStatus {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return corev1.ContainerStatus{}
		}
		return p.Status.ContainerStatuses[0]
	}
	eventually(t, ctx, "ready turns Ready", func() bool { return status("ready").Ready })
	eventually(t, ctx, "dying restarted by its liveness probe", func() bool { return status("dying").RestartCount >= 1 })
	if cs := status("dying"); cs.LastTerminationState.Terminated == nil {
		t.Errorf("dying has no last termination state: %+v", cs)
	}
	for _, name := range []string{"unready", "starting"} {
		cs := status(name)
		if cs.State.Running == nil || cs.Ready || cs.RestartCount != 0 {
			t.Errorf("%s: running %v ready %v restarts %d; want running, not ready, never restarted", name, cs.State.Running != nil, cs.Ready, cs.RestartCount)
		}
	}
	if cs := status("starting"); cs.Started == nil || *cs.Started {
		t.Errorf("starting is started before its startup probe passed: %+v", cs.Started)
	}
}

func TestKubeletImagePullFailuresAndDeadlines(t *testing.T) {
	// A back-off longer than the 2 s retry after a failure, so that the
	// retry finds the pull backing off.
	client := fake.NewClientset()
	ctx, _ := runKubelet(t, client, hollow.New(hollow.Options{}), func(c *kubelet.Config) {
		c.Backoff = kubelet.BackoffPolicy{Initial: 5 * time.Second, Max: 10 * time.Second}
	})
	pods := client.CoreV1().Pods("default")
	bad := hollowPod("bad", corev1.RestartPolicyAlways, nil)
	bad.Spec.Containers[0].Image = "Not A Reference"
	never := hollowPod("never", corev1.RestartPolicyAlways, nil)
	never.Spec.Containers[0].Image, never.Spec.Containers[0].ImagePullPolicy = "absent:1", corev1.PullNever
	deadline := hollowPod("deadline", corev1.RestartPolicyAlways, nil)
	deadline.Spec.ActiveDeadlineSeconds = ptrTo(int64(1))
	for _, p := range []*corev1.Pod{bad, never, deadline} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func(name string) string {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return ""
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason
	}
	// ErrImagePull shows only until the next sync finds the pull backing
	// off: look for it in the events, and for ImagePullBackOff in the
	// status.
	eventually(t, ctx, "ImagePullBackOff after an ErrImagePull event", func() bool {
		if waiting("bad") != kubelet.ReasonImagePullBackOff {
			return false
		}
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "bad" && e.Reason == kubelet.EventFailed && strings.Contains(e.Message, kubelet.ReasonErrImagePull) {
				return true
			}
		}
		return false
	})
	eventually(t, ctx, "ErrImageNeverPull", func() bool { return waiting("never") == kubelet.ReasonErrImageNeverPull })
	eventually(t, ctx, "deadline Failed with DeadlineExceeded", func() bool {
		p, err := pods.Get(ctx, "deadline", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodFailed && p.Status.Reason == kubelet.ReasonDeadlineExceeded
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestKubeletRestartAdoptsRunningPods stops a kubelet and starts another
// over the same runtime: the running container is adopted, not restarted.
func TestKubeletRestartAdoptsRunningPods(t *testing.T) {
	client := fake.NewClientset()
	rt := hollow.New(hollow.Options{})
	ctx, stop := runKubelet(t, client, rt)
	if _, err := client.CoreV1().Pods("default").Create(ctx, hollowPod("web", corev1.RestartPolicyAlways, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var before corev1.ContainerStatus
	eventually(t, ctx, "web running", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return false
		}
		before = p.Status.ContainerStatuses[0]
		return true
	})
	stop()
	// Clear the status, so that the second kubelet's sync shows in it.
	p, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{}
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx2, _ := runKubelet(t, client, rt)
	var after corev1.ContainerStatus
	eventually(t, ctx2, "web's status written again", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx2, "web", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return false
		}
		after = p.Status.ContainerStatuses[0]
		return true
	})
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 {
		t.Errorf("container %s (restarts %d) after the restart, %s before", after.ContainerID, after.RestartCount, before.ContainerID)
	}
	cs, err := rt.ListContainers(ctx2, nil)
	if err != nil || len(cs) != 1 {
		t.Errorf("containers in the runtime: %v, %v", cs, err)
	}
}

func TestKubeletRejectsPodsThatCannotRun(t *testing.T) {
	rt := hollow.New(hollow.Options{})
	client, ctx := startKubelet(t, rt)
	pods := client.CoreV1().Pods("default")
	elsewhere := hollowPod("elsewhere", corev1.RestartPolicyAlways, nil)
	elsewhere.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "n2"}
	first := hollowPod("first", corev1.RestartPolicyAlways, nil)
	first.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
	for _, p := range []*corev1.Pod{elsewhere, first} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "first running", func() bool {
		p, err := pods.Get(ctx, "first", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	second := hollowPod("second", corev1.RestartPolicyAlways, nil)
	second.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
	if _, err := pods.Create(ctx, second, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, reason := range map[string]string{"elsewhere": kubelet.ReasonNodeAffinity, "second": kubelet.ReasonNodePorts} {
		eventually(t, ctx, name+" rejected with "+reason, func() bool {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodFailed && p.Status.Reason == reason
		})
		p, _ := pods.Get(ctx, name, metav1.GetOptions{})
		if len(p.Status.ContainerStatuses) != 0 || p.Status.Message == "" {
			t.Errorf("%s: rejected status %+v", name, p.Status)
		}
		sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{kubelet.LabelPodUID: string(p.UID)}})
		if err != nil || len(sbs) != 0 {
			t.Errorf("%s: sandboxes %v, %v", name, sbs, err)
		}
	}
}

func TestKubeletSidecars(t *testing.T) {
	client, ctx := startKubelet(t, hollow.New(hollow.Options{}))
	pods := client.CoreV1().Pods("default")
	job := hollowPod("job", corev1.RestartPolicyNever, map[string]string{})
	always := corev1.ContainerRestartPolicyAlways
	job.Spec.InitContainers = []corev1.Container{{Name: "side", Image: "img:1", RestartPolicy: &always}}
	// Both containers exit after 300ms (the hollow annotation is per pod),
	// but a sidecar is restarted whenever it exits: only the app
	// container's exit can end the job, and the sidecar is then stopped.
	job.Spec.Containers[0].Image = "img:1"
	job.Annotations[hollow.AnnotationRunFor] = "300ms"
	if _, err := pods.Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var p *corev1.Pod
	eventually(t, ctx, "job Succeeded though its sidecar never exits by itself", func() bool {
		var err error
		p, err = pods.Get(ctx, "job", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodSucceeded
	})
	if ics := p.Status.InitContainerStatuses; len(ics) != 1 || ics[0].State.Terminated == nil {
		t.Errorf("the sidecar was not stopped when the job ended: %+v", ics)
	}
}

// flaky is a runtime that can be made unreachable: every call it makes
// fails while down is set.
type flaky struct {
	*hollow.Runtime
	down atomic.Bool
}

var errDown = errors.New("runtime unreachable")

func (f *flaky) Status(ctx context.Context, v bool) (*runtimeapi.StatusResponse, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Runtime.Status(ctx, v)
}

func (f *flaky) ListPodSandbox(ctx context.Context, fl *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Runtime.ListPodSandbox(ctx, fl)
}

func (f *flaky) ListContainers(ctx context.Context, fl *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Runtime.ListContainers(ctx, fl)
}

// TestKubeletSurvivesARuntimeOutage: while the runtime does not answer,
// the node turns NotReady and nothing is restarted; when it is back, the
// node is Ready again and the pod keeps its container.
func TestKubeletSurvivesARuntimeOutage(t *testing.T) {
	rt := &flaky{Runtime: hollow.New(hollow.Options{})}
	client, ctx := startKubelet(t, rt)
	pods := client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, hollowPod("web", corev1.RestartPolicyAlways, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var before corev1.ContainerStatus
	eventually(t, ctx, "web running", func() bool {
		p, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return false
		}
		before = p.Status.ContainerStatuses[0]
		return true
	})
	ready := func(want corev1.ConditionStatus) func() bool {
		return func() bool {
			n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			return err == nil && nodeReady(n).Status == want
		}
	}
	rt.down.Store(true)
	eventually(t, ctx, "node NotReady while the runtime is down", ready(corev1.ConditionFalse))
	rt.down.Store(false)
	eventually(t, ctx, "node Ready again", ready(corev1.ConditionTrue))
	p, err := pods.Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("web: %v, %+v", err, p)
	}
	if after := p.Status.ContainerStatuses[0]; after.ContainerID != before.ContainerID || after.RestartCount != 0 || after.State.Running == nil {
		t.Errorf("web's container changed over the outage: before %+v, after %+v", before, after)
	}
}

func TestKubeletStaticPods(t *testing.T) {
	dir := t.TempDir()
	rt := hollow.New(hollow.Options{})
	client := fake.NewClientset()
	ctx, _ := runKubelet(t, client, rt, func(c *kubelet.Config) {
		c.StaticPodPath, c.FileCheckFrequency = dir, 20*time.Millisecond
	})
	pods := client.CoreV1().Pods("kube-system")
	write := func(image string) {
		m := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system}\nspec:\n  containers: [{name: c, image: " + image + "}]\n"
		if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mirror := func() *corev1.Pod {
		p, err := pods.Get(ctx, "web-n1", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return p
	}
	write("img:1")
	var first *corev1.Pod
	eventually(t, ctx, "mirror pod Running", func() bool {
		first = mirror()
		return first != nil && first.Annotations[kubelet.AnnotationConfigMirror] != "" && first.Status.Phase == corev1.PodRunning
	})
	hash := first.Annotations[kubelet.AnnotationConfigMirror]
	sandboxes := func(uid string) int {
		sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{kubelet.LabelPodUID: uid}})
		if err != nil {
			t.Fatal(err)
		}
		return len(sbs)
	}
	if sandboxes(hash) != 1 || sandboxes(string(first.UID)) != 0 {
		t.Errorf("the static pod runs under %s: %d sandboxes; under the mirror's UID: %d", hash, sandboxes(hash), sandboxes(string(first.UID)))
	}

	// Deleting the mirror pod does not stop the static pod: it comes back.
	// (The fake API assigns no UIDs: a label tells the old mirror.)
	first.Labels = map[string]string{"old": "yes"}
	if _, err := pods.Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "web-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "mirror pod recreated", func() bool {
		m := mirror()
		return m != nil && m.Labels["old"] == "" && m.Annotations[kubelet.AnnotationConfigMirror] == hash
	})
	if sandboxes(hash) != 1 {
		t.Errorf("the static pod's sandboxes after its mirror was deleted: %d", sandboxes(hash))
	}

	// A new manifest is a new pod.
	write("img:2")
	eventually(t, ctx, "the new manifest's pod running, the old one gone", func() bool {
		m := mirror()
		return m != nil && m.Annotations[kubelet.AnnotationConfigMirror] != hash && m.Status.Phase == corev1.PodRunning && sandboxes(hash) == 0
	})
	hash2 := mirror().Annotations[kubelet.AnnotationConfigMirror]

	// Removing the manifest stops the pod and deletes its mirror.
	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "static pod and mirror gone", func() bool { return mirror() == nil && sandboxes(hash2) == 0 })
}

// TestKubeletProjectedServiceAccountToken runs a pod with the projected
// volume kube-apiserver's ServiceAccount admission adds to every pod: a
// bound token from the TokenRequest API (requested once, then reused),
// the cluster CA and the namespace.
func TestKubeletProjectedServiceAccountToken(t *testing.T) {
	client := fake.NewClientset()
	var requests atomic.Int32
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		n := requests.Add(1)
		if tr.Spec.BoundObjectRef == nil || tr.Spec.BoundObjectRef.Name != "app" {
			return true, nil, errors.New("token not bound to the pod")
		}
		tr.Status.Token = "token-" + strconv.Itoa(int(n))
		tr.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Hour))
		return true, tr, nil
	})
	root := t.TempDir()
	ctx, _ := runKubelet(t, client, hollow.New(hollow.Options{}), func(c *kubelet.Config) { c.RootDir, c.SyncFrequency = root, 20*time.Millisecond })
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"},
		Data: map[string]string{"ca.crt": "PEM"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := int64(3607)
	pod := hollowPod("app", corev1.RestartPolicyAlways, nil)
	pod.Spec.ServiceAccountName = "default"
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "app running", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "app", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	dir := filepath.Join(root, "pods", string(pod.UID), "volumes", "kubernetes.io~projected", "kube-api-access-x")
	for file, want := range map[string]string{"token": "token-1", "ca.crt": "PEM", "namespace": "default"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", file, b, err, want)
		}
	}
	// A changed ConfigMap reaches the volume at a periodic sync
	// (SyncFrequency is 20ms here); the token is reused meanwhile.
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"},
		Data: map[string]string{"ca.crt": "NEW PEM"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the volume refreshed", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		return err == nil && string(b) == "NEW PEM"
	})
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1 (reuse until 80%% of the lifetime)", n)
	}
}

// TestKubeletWaitsForAMissingConfigMap: a pod whose configMap volume does
// not exist yet waits in ContainerCreating with a FailedMount event, and
// runs once the ConfigMap appears.
func TestKubeletWaitsForAMissingConfigMap(t *testing.T) {
	client, ctx := startKubelet(t, hollow.New(hollow.Options{}))
	pods := client.CoreV1().Pods("default")
	pod := hollowPod("cfg", corev1.RestartPolicyAlways, nil)
	pod.Spec.Volumes = []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "later"}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "c", MountPath: "/etc/c"}}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "ContainerCreating and a FailedMount event", func() bool {
		p, err := pods.Get(ctx, "cfg", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
			p.Status.ContainerStatuses[0].State.Waiting.Reason != kubelet.ReasonContainerCreating {
			return false
		}
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == kubelet.EventFailedMount && e.InvolvedObject.Name == "cfg" {
				return true
			}
		}
		return false
	})
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "running once the ConfigMap exists", func() bool {
		p, err := pods.Get(ctx, "cfg", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
}

func TestKubeletPostStartHook(t *testing.T) {
	client, ctx := startKubelet(t, execSays{hollow.New(hollow.Options{})})
	pods := client.CoreV1().Pods("default")
	good := hollowPod("good", corev1.RestartPolicyAlways, nil)
	good.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"ok"}}}}
	bad := hollowPod("bad", corev1.RestartPolicyAlways, nil)
	bad.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"fail"}}}}
	for _, p := range []*corev1.Pod{good, bad} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, ctx, "bad killed by its failing postStart hook and restarted, with an event", func() bool {
		p, err := pods.Get(ctx, "bad", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 1 {
			return false
		}
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "bad" && e.Reason == kubelet.EventFailedPostStartHook {
				return true
			}
		}
		return false
	})
	eventually(t, ctx, "good running", func() bool {
		p, err := pods.Get(ctx, "good", metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	})
	if p, _ := pods.Get(ctx, "good", metav1.GetOptions{}); p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("good restarted %d times", p.Status.ContainerStatuses[0].RestartCount)
	}
}
