package controllers_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
	"github.com/kubelab/kubelab/spec/spectest"
)

// TestManagerRestartMidScaleUp kills the controller manager while a
// ReplicaSet scales up and starts another: the pods converge to
// spec.replicas and at no observed state are there more.
func TestManagerRestartMidScaleUp(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	// A slow client (50 requests/s) so that the kill lands mid-scale-up.
	slow := rest.CopyConfig(api.ConfigFor(t, pki.ControllerManagerIdentity()))
	slow.QPS, slow.Burst = 50, 10
	mcs, err := kubernetes.NewForConfig(slow)
	if err != nil {
		t.Fatal(err)
	}
	only := func(c *controllers.Config) { c.Controllers = []string{"replicaset"} }
	ctx := context.Background()
	const ns, replicas = "scale", 100
	newNamespace(t, cs, ns)
	mon := watchPods(t, cs, ns, replicas, replicas+1) // availability is not checked here

	// Stop the first manager as soon as a few pods exist.
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	_, stop := startManager(t, mcs, only)
	rs := spectest.MakeReplicaSet().Name("burst").Replicas(replicas).Obj()
	rs.Namespace, rs.UID = ns, ""
	if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for ev := range w.ResultChan() {
		if ev.Type == watch.Added {
			if seen++; seen == 5 {
				break
			}
		}
	}
	stop()
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) >= replicas {
		t.Fatalf("the manager was stopped after the scale-up finished (%d pods): the test proves nothing", len(l.Items))
	}
	t.Logf("stopped with %d of %d pods", len(l.Items), replicas)

	startManager(t, mcs, only)
	eventually(t, "converged", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "burst", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == replicas && got.Status.ObservedGeneration == got.Generation, nil
	})
	l, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != replicas {
		t.Fatalf("%d pods, want %d", len(l.Items), replicas)
	}
	mon.check(t)
	if mon.maxSeen != replicas {
		t.Fatalf("at most %d pods observed, want %d", mon.maxSeen, replicas)
	}
}

// TestOnlyTheLeaderActs runs two managers: only the one holding the Lease
// runs controllers; when it stops, the other takes over and carries on.
func TestOnlyTheLeaderActs(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	mcs := api.ClientFor(t, pki.ControllerManagerIdentity())
	only := func(c *controllers.Config) { c.Controllers = []string{"replicaset"} }
	ctx := context.Background()
	const ns = "ha"
	newNamespace(t, cs, ns)
	mon := watchPods(t, cs, ns, 6, 7) // availability is not checked here

	_, stopFirst := startManager(t, mcs, only)
	second, err := controllers.New(controllers.Config{Client: mcs, Controllers: []string{"replicaset"},
		Logger:         discardLogger(),
		LeaderElection: controllers.LeaderElection{Enabled: true, LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })

	rs := spectest.MakeReplicaSet().Name("ha").Replicas(3).Obj()
	rs.Namespace, rs.UID = ns, ""
	if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 replicas under the first leader", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "ha", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == 3, nil
	})
	select {
	case <-second.Leading():
		t.Fatal("the second manager runs controllers while the first holds the Lease")
	default:
	}
	stopFirst()
	select {
	case <-second.Leading():
	case <-time.After(30 * time.Second):
		t.Fatal("the second manager did not take over within 30s")
	}
	if _, err := cs.AppsV1().ReplicaSets(ns).Patch(ctx, "ha", types.MergePatchType, []byte(`{"spec":{"replicas":6}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "6 replicas under the second leader", func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "ha", metav1.GetOptions{})
		return err == nil && got.Status.Replicas == 6 && got.Status.ObservedGeneration == got.Generation, nil
	})
	mon.check(t)
	if mon.maxSeen != 6 {
		t.Fatalf("at most %d pods observed, want 6", mon.maxSeen)
	}
}
