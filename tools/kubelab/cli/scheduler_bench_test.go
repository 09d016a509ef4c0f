package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/plugins/builtin"
	"github.com/kubelab/kubelab/plugins/scheduler/profiles"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/scheduler"
	"github.com/kubelab/kubelab/spec"
)

// BenchmarkSchedulerDefaultProfile schedules b.N pods (at least 1000) onto
// 5 000 nodes with the built-in default profile through the in-process API
// server (memory store, plain HTTP), as scheduler_perf's SchedulingBasic
// 5000Nodes_10000Pods does for the kube-scheduler (300–670 pods/s on two
// cores), and reports pods/s and the mean scheduling cycle:
//
//	go test ./tools/kubelab/cli -run XXX -bench SchedulerDefaultProfile -benchtime 10000x
func BenchmarkSchedulerDefaultProfile(b *testing.B) {
	const nodes = 5000
	pods := max(b.N, 1000)
	api := apiservertest.Start(b, nil)
	ctx := context.Background()
	fanOut(b, nodes, func(i int) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%04d", i),
			Labels: map[string]string{corev1.LabelHostname: fmt.Sprintf("node-%04d", i), corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%3)}}}
		created, err := api.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		created.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")}
		created.Status.Capacity = created.Status.Allocatable
		_, err = api.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	reg := builtin.Registry()
	for _, p := range profiles.Plugins() {
		if _, err := reg.Scheduler(p.Name); err != nil {
			spec.MustRegister(reg.RegisterScheduler(p))
		}
	}
	s, err := scheduler.New(scheduler.Config{RestConfig: api.Config, Registry: reg, Profiles: []spec.Profile{profiles.Default()}, ListenAddress: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	<-s.Leading()
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + s.Addr() + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+" ") {
				var v float64
				_, _ = fmt.Sscan(strings.TrimPrefix(line, name+" "), &v)
				return v
			}
		}
		return 0
	}
	b.ResetTimer()
	start := time.Now()
	go fanOut(b, pods, func(i int) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("pod-%05d", i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("500Mi")}}}}}}
		_, err := api.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		return err
	})
	key := `scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}`
	for metric(key) < float64(pods) {
		time.Sleep(50 * time.Millisecond)
		if time.Since(start) > 15*time.Minute {
			b.Fatalf("only %v of %d pods bound", metric(key), pods)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(pods)/el.Seconds(), "pods/s")
	b.ReportMetric(metric("scheduler_scheduling_algorithm_duration_seconds_sum")/metric("scheduler_scheduling_algorithm_duration_seconds_count")*1e3, "ms/cycle")
}

// fanOut runs f(0..n-1) on 16 goroutines and fails b on an error.
func fanOut(b *testing.B, n int, f func(i int) error) {
	var wg sync.WaitGroup
	next := make(chan int)
	var once sync.Once
	for w := 0; w < 16; w++ {
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
