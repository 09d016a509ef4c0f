package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/scheduler"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/freeport"
)

// syncBuffer is a bytes.Buffer safe for the scheduler's concurrent logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSchedulerCommandWithDefaultProfile runs `kubelab scheduler` (the
// built-in default profile, leader election on) against `kubelab apiserver`
// with the scheduler's kubeconfig from the data dir, then explains a pod.
func TestSchedulerCommandWithDefaultProfile(t *testing.T) {
	dataDir := t.TempDir()
	_, stop := startAPIServer(t, APIServerOptions{DataDir: dataDir})
	defer stop()
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, pki.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(admin)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)}}
		created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(fmt.Sprintf("%d", 2+i)),
			corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")}
		created.Status.Capacity = created.Status.Allocatable
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	listen, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() {
		done <- RunScheduler(sctx, builtin.Registry(), SchedulerOptions{
			Kubeconfig: filepath.Join(dataDir, pki.SchedulerKubeconfigFile), LeaderElect: true, LeaseName: "kube-scheduler",
			Listen: listen, Explain: true, ExplainAnnotation: true, QPS: 100, Burst: 200,
		}, out)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunScheduler: %v\n%s", err, out.String())
		}
	}()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}}}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	impossible := pod.DeepCopy()
	impossible.Name = "impossible"
	impossible.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("64")
	if _, err := cs.CoreV1().Pods("default").Create(ctx, impossible, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web not bound; scheduler output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var text bytes.Buffer
	for {
		x, err := FetchExplanation(ctx, "impossible", ExplainOptions{Namespace: "default", SchedulerURL: listen})
		if err == nil {
			text.Reset()
			if err := RenderExplanation(&text, x); err != nil {
				t.Fatal(err)
			}
			if x.Result == "Unschedulable" && strings.HasPrefix(x.Message, "0/3 ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no explanation for impossible: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := text.String()
	for _, want := range []string{"Result:     Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.", "NODE", "VERDICT", "node-0", "NodeResourcesFit: Insufficient cpu"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
	x, err := FetchExplanation(ctx, "web", ExplainOptions{Namespace: "default", SchedulerURL: "http://" + listen})
	if err != nil {
		t.Fatal(err)
	}
	text.Reset()
	if err := RenderExplanation(&text, x); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "TOTAL") || !strings.Contains(text.String(), "*") || x.Node == "" {
		t.Errorf("explanation of web:\n%s", text.String())
	}
	t.Logf("kubelab explain pod web:\n%s", text.String())
	// The same explanation from the pod's annotation, through the API.
	var ann *scheduler.Explanation
	for {
		ann, err = FetchExplanation(ctx, "web", ExplainOptions{Namespace: "default", FromAnnotation: true,
			Kubeconfig: filepath.Join(dataDir, pki.AdminKubeconfigFile)})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ann.Node != x.Node || len(ann.Nodes) != len(x.Nodes) {
		t.Errorf("annotation %+v, endpoint %+v", ann, x)
	}
}

func TestSchedulerOptionsErrors(t *testing.T) {
	reg := builtin.Registry()
	for name, opts := range map[string]SchedulerOptions{
		"unknown profile":     {Profiles: []string{"nope"}},
		"rename two":          {Profiles: []string{"default-scheduler", "binpack-scheduler"}, SchedulerName: "x"},
		"profile and config":  {Profiles: []string{"default-scheduler"}, Config: "x.yaml"},
		"missing config file": {Config: filepath.Join(t.TempDir(), "none.yaml")},
	} {
		if _, err := BuildSchedulerConfig(reg, opts, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A third party's registered profile is found by name, and a mistyped
	// name lists it among the registered ones.
	mine := spec.Profile{SchedulerName: "my-scheduler", Plugins: []spec.WeightedPlugin{{Name: "NodeName"}}}
	spec.MustRegister(reg.RegisterProfile(mine))
	if cfg, err := BuildSchedulerConfig(reg, SchedulerOptions{Profiles: []string{"my-scheduler"}}, nil); err != nil ||
		len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName != "my-scheduler" {
		t.Errorf("my-scheduler: %+v, %v", cfg.Profiles, err)
	}
	if _, err := BuildSchedulerConfig(reg, SchedulerOptions{Profiles: []string{"my-schedular"}}, nil); !errors.Is(err, spec.ErrNotFound) ||
		!strings.Contains(err.Error(), "my-scheduler") || !strings.Contains(err.Error(), "binpack-scheduler") {
		t.Errorf("mistyped profile: %v", err)
	}
	cfg, err := BuildSchedulerConfig(reg, SchedulerOptions{Config: "../../../reference/scheduler/testdata/config.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Profiles) != 2 || cfg.Profiles[1].SchedulerName != "packing-scheduler" {
		t.Errorf("profiles %+v", cfg.Profiles)
	}
}

// TestSchedulerPreemptsWithDefaultProfile: DefaultPreemption through the
// scheduler's handle marks and deletes the victim and nominates the node.
func TestSchedulerPreemptsWithDefaultProfile(t *testing.T) {
	dataDir := t.TempDir()
	_, stop := startAPIServer(t, APIServerOptions{DataDir: dataDir})
	defer stop()
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, pki.AdminKubeconfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(admin)
	ctx := context.Background()
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "only"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110")}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() {
		done <- RunScheduler(sctx, builtin.Registry(), SchedulerOptions{
			Kubeconfig: filepath.Join(dataDir, pki.SchedulerKubeconfigFile), QPS: 100, Burst: 200}, out)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunScheduler: %v\n%s", err, out.String())
		}
	}()
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
		ObjectMeta: metav1.ObjectMeta{Name: "important"}, Value: 1000}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, class string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec: corev1.PodSpec{PriorityClassName: class, Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}}}}}
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, mk("low", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out\n%s", what, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	get := func(name string) *corev1.Pod {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return p
	}
	wait("low bound", func() bool { p := get("low"); return p != nil && p.Spec.NodeName == "only" })
	if _, err := cs.CoreV1().Pods("default").Create(ctx, mk("high", "important"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("high nominated", func() bool { p := get("high"); return p != nil && p.Status.NominatedNodeName == "only" })
	wait("low preempted", func() bool {
		p := get("low")
		if p == nil {
			return true
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler {
				return p.DeletionTimestamp != nil
			}
		}
		return false
	})
	// Without a kubelet the victim stays terminating; finish its deletion
	// as a kubelet would, and the preemptor gets the node.
	zero := int64(0)
	if err := cs.CoreV1().Pods("default").Delete(ctx, "low", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	wait("high bound", func() bool { p := get("high"); return p != nil && p.Spec.NodeName == "only" })
}
