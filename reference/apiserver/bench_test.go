package apiserver_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// BenchmarkPodCreate creates pods through client-go from 16 concurrent
// clients (the throughput benchmark), over the memory store.
func BenchmarkPodCreate(b *testing.B) {
	s := apiservertest.Start(b, nil)
	var n atomic.Int64
	b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			name := fmt.Sprintf("p-%d", n.Add(1))
			if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod(name, nil), metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkListPods lists 10 000 pods (served by the watch cache).
func BenchmarkListPods(b *testing.B) {
	s := apiservertest.Start(b, nil)
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("p-%05d", i), nil), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := s.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 10000 {
			b.Fatalf("list: %d items, %v", len(l.Items), err)
		}
	}
}

// BenchmarkPodCreateBind creates a pod and binds it to a node
// (pods/binding), as the scheduler does for every pod, from 16 concurrent
// clients over the memory store.
func BenchmarkPodCreateBind(b *testing.B) {
	s := apiservertest.Start(b, nil)
	var n atomic.Int64
	b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			name := fmt.Sprintf("p-%d", i)
			pods := s.Client.CoreV1().Pods("default")
			if _, err := pods.Create(ctx, pod(name, nil), metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
			bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: fmt.Sprintf("node-%d", i%100)}}
			if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
