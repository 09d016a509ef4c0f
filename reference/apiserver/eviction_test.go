package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// runningReady marks the pod running and ready, as its kubelet would.
func runningReady(t *testing.T, c kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	p, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctxT(t), p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// evictionFixture is a running, ready pod "a" (labels app=x) covered by the
// budget "pdb" whose status, as the disruption controller writes it,
// allows `allowed` disruptions.
func evictionFixture(t *testing.T, s *apiservertest.Server, allowed int32) (*corev1.Pod, *policyv1.PodDisruptionBudget) {
	t.Helper()
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, pod("a", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p = runningReady(t, s.Client, p)
	pdbs := s.Client.PolicyV1().PodDisruptionBudgets("default")
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
		Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status.ObservedGeneration = pdb.Generation
	pdb.Status.DisruptionsAllowed, pdb.Status.CurrentHealthy, pdb.Status.DesiredHealthy, pdb.Status.ExpectedPods = allowed, 2, 2-allowed, 2
	if pdb, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p, pdb
}

// wantEvictionUntouched fails unless the pod and the budget are as given.
func wantEvictionUntouched(t *testing.T, c kubernetes.Interface, p *corev1.Pod, pdb *policyv1.PodDisruptionBudget) {
	t.Helper()
	ctx := ctxT(t)
	gotPod, err := c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod after a dry-run eviction: %v", err)
	}
	if gotPod.ResourceVersion != p.ResourceVersion || gotPod.DeletionTimestamp != nil {
		t.Fatalf("pod changed by a dry-run eviction: rv %s -> %s, deletionTimestamp %v", p.ResourceVersion, gotPod.ResourceVersion, gotPod.DeletionTimestamp)
	}
	gotPDB, err := c.PolicyV1().PodDisruptionBudgets(pdb.Namespace).Get(ctx, pdb.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gotPDB.ResourceVersion != pdb.ResourceVersion || gotPDB.Status.DisruptionsAllowed != pdb.Status.DisruptionsAllowed || len(gotPDB.Status.DisruptedPods) != 0 {
		t.Fatalf("budget changed by a dry-run eviction: rv %s -> %s, disruptionsAllowed %d -> %d, disruptedPods %v",
			pdb.ResourceVersion, gotPDB.ResourceVersion, pdb.Status.DisruptionsAllowed, gotPDB.Status.DisruptionsAllowed, gotPDB.Status.DisruptedPods)
	}
}

// TestEvictionDryRunChangesNothing: an eviction with dryRun=All — in the
// Eviction's DeleteOptions (kubectl drain --dry-run=server) or as the
// request's parameter — answers as the eviction would and changes neither
// the pod nor its budget (issue 12: it used to take a disruption).
func TestEvictionDryRunChangesNothing(t *testing.T) {
	for _, via := range []string{"deleteOptions", "query"} {
		t.Run(via, func(t *testing.T) {
			s := apiservertest.StartSecure(t, nil)
			ctx := ctxT(t)
			p, pdb := evictionFixture(t, s, 1)
			err := evictDryRun(ctx, s.Client, "default", "a", via)
			if err != nil {
				t.Fatalf("dry-run eviction: %v", err)
			}
			wantEvictionUntouched(t, s.Client, p, pdb)
		})
	}
	t.Run("refused", func(t *testing.T) {
		// A dry run reports the refusal a real eviction would get.
		s := apiservertest.StartSecure(t, nil)
		p, pdb := evictionFixture(t, s, 0)
		if err := evictDryRun(ctxT(t), s.Client, "default", "a", "deleteOptions"); !apierrors.IsTooManyRequests(err) {
			t.Fatalf("dry-run eviction against an exhausted budget: want 429, got %v", err)
		}
		wantEvictionUntouched(t, s.Client, p, pdb)
	})
}

func evictDryRun(ctx context.Context, c kubernetes.Interface, ns, name, via string) error {
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if via == "deleteOptions" {
		ev.DeleteOptions = &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
		return c.CoreV1().Pods(ns).EvictV1(ctx, ev)
	}
	ev.TypeMeta = metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"}
	return c.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(name).SubResource("eviction").
		Param("dryRun", metav1.DryRunAll).Body(ev).Do(ctx).Error()
}

// TestEvictionTakesADisruption: a real eviction deletes the pod, takes one
// disruption from the budget and records the pod in status.disruptedPods
// (for the disruption controller, as upstream); with none left it is 429
// and the pod stays.
func TestEvictionTakesADisruption(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	_, _ = evictionFixture(t, s, 1)
	pods := s.Client.CoreV1().Pods("default")
	b, err := pods.Create(ctx, pod("b", map[string]string{"app": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runningReady(t, s.Client, b)
	if err := pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}); err != nil {
		t.Fatalf("eviction: %v", err)
	}
	if _, err := pods.Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod: %v", err)
	}
	pdb, err := s.Client.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "pdb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Status.DisruptionsAllowed != 0 {
		t.Fatalf("disruptionsAllowed after an eviction: %d, want 0", pdb.Status.DisruptionsAllowed)
	}
	if _, ok := pdb.Status.DisruptedPods["a"]; !ok {
		t.Fatalf("status.disruptedPods lacks the evicted pod: %v", pdb.Status.DisruptedPods)
	}
	err = pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction past the budget: want 429, got %v", err)
	}
	if _, err := pods.Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Fatalf("a pod the budget protects: %v", err)
	}
}
