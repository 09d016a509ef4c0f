package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

// BenchmarkSchedulingThroughput schedules b.N pods (at least 1000) onto
// 5 000 nodes through kubelab's API server (in-process, memory store) and
// reports pods/s: pod creation runs concurrently with scheduling, and the
// clock stops when the last pod is bound. Compare with scheduler_perf's
// SchedulingBasic/5000Nodes_10000Pods (kube-scheduler: 300–670 pods/s on
// two cores). Run: go test ./reference/scheduler -run XXX -bench Throughput -benchtime 10000x
func BenchmarkSchedulingThroughput(b *testing.B) {
	const nodes = 5000
	pods := max(b.N, 1000)
	api := apiservertest.Start(b, nil)
	ctx := context.Background()
	parallel(b, nodes, 16, func(i int) error {
		n := spectest.MakeNode().Name(fmt.Sprintf("node-%04d", i)).Label("score", fmt.Sprint(i%100)).
			Capacity(spectest.Res{corev1.ResourceCPU: "4", corev1.ResourceMemory: "32Gi"}).Obj()
		created, err := api.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status = n.Status
		_, err = api.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	s, err := New(Config{RestConfig: api.Config, Registry: testRegistry(b, nil),
		Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestFit", "TestTaint", "TestLabelScore")}})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for s.cache.NodeCount() < nodes {
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	start := time.Now()
	var created atomic.Value
	go func() {
		defer func() { created.Store(time.Since(start)) }()
		parallel(b, pods, 16, func(i int) error {
			p := spectest.MakePod().Name(fmt.Sprintf("pod-%05d", i)).Image("pause").Req(spectest.Res{corev1.ResourceCPU: "100m"}).Obj()
			p.UID = "" // the API server assigns it
			_, err := api.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	}()
	scheduled := s.metrics.scheduleAttempts.WithLabelValues("scheduled", DefaultSchedulerName)
	for int(counterValue(scheduled)) < pods {
		time.Sleep(5 * time.Millisecond)
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("only %v of %d pods bound", counterValue(scheduled), pods)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	if testing.Verbose() {
		var m dto.Metric
		_ = s.metrics.algorithmDuration.Write(&m)
		b.Logf("algorithm: %d cycles, %.1fs total", m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
		_ = s.metrics.bindingDuration.Write(&m)
		b.Logf("binding: %d, %.1fs total", m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
		b.Logf("created by %v", created.Load())
	}
	b.ReportMetric(float64(pods)/el.Seconds(), "pods/s")
}

// parallel runs f(0..n-1) on workers goroutines and fails b on an error.
func parallel(b *testing.B, n, workers int, f func(i int) error) {
	var wg sync.WaitGroup
	next := make(chan int)
	var once sync.Once
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { b.Error(err) })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// counterValue reads a counter.
func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// BenchmarkScheduleCycle is one scheduling cycle (snapshot update, filter,
// score, select, assume) over 5 000 nodes without the API: the
// framework's own cost with trivial plugins.
func BenchmarkScheduleCycle(b *testing.B) {
	for _, par := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) { benchmarkScheduleCycle(b, par) })
	}
}

func benchmarkScheduleCycle(b *testing.B, par int) {
	s, err := New(Config{Client: kubernetesNilClient(), Registry: testRegistry(b, nil),
		Profiles: []spec.Profile{profile(DefaultSchedulerName, "TestTaint", "TestLabelScore")}, Parallelism: par})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		s.cache.AddNode(spectest.MakeNode().Name(fmt.Sprintf("node-%04d", i)).Label("score", fmt.Sprint(i%100)).
			Capacity(spectest.Res{corev1.ResourceCPU: "4"}).Obj())
	}
	fw := s.profiles[DefaultSchedulerName]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pod := spectest.MakePod().Name(fmt.Sprint(i)).UID(fmt.Sprint(i)).Obj()
		s.cache.UpdateSnapshot(s.snap)
		c := &cycle{prof: fw, state: &spec.CycleState{}, pod: pod}
		res, err := s.schedulePod(context.Background(), c, s.snap)
		if err != nil {
			b.Fatal(err)
		}
		pod.Spec.NodeName = res.Node
		if err := s.cache.AssumePod(pod); err != nil {
			b.Fatal(err)
		}
	}
}

func kubernetesNilClient() kubernetes.Interface { return kubernetes.New(nil) }
