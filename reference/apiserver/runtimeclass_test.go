package apiserver_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

// TestRuntimeClassThroughClientGo: node.k8s.io/v1 RuntimeClasses are
// served (CRUD, validation, immutable handler), and a pod naming one gets
// its overhead from it; a pod naming a missing class is rejected.
func TestRuntimeClassThroughClientGo(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := context.Background()
	rcs := s.Client.NodeV1().RuntimeClasses()
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("120Mi")}
	kata, err := rcs.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata",
		Overhead: &nodev1.Overhead{PodFixed: overhead}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := rcs.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	for name, bad := range map[string]*nodev1.RuntimeClass{
		"no handler":        {ObjectMeta: metav1.ObjectMeta{Name: "x1"}},
		"handler not label": {ObjectMeta: metav1.ObjectMeta{Name: "x2"}, Handler: "Not_A_Label"},
		"negative overhead": {ObjectMeta: metav1.ObjectMeta{Name: "x3"}, Handler: "h",
			Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}}},
		"bad toleration": {ObjectMeta: metav1.ObjectMeta{Name: "x4"}, Handler: "h",
			Scheduling: &nodev1.Scheduling{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "v"}}}},
	} {
		if _, err := rcs.Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("%s: %v, want 422 Invalid", name, err)
		}
	}
	kata.Handler = "other"
	if _, err := rcs.Update(ctx, kata, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "handler") {
		t.Errorf("handler update: %v, want 422 on handler", err)
	}

	pod := func(name, class string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if class != "" {
			p.Spec.RuntimeClassName = &class
		}
		return p
	}
	got, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("with-class", "kata"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Overhead.Cpu().Cmp(resource.MustParse("250m")) != 0 || got.Spec.Overhead.Memory().Cmp(resource.MustParse("120Mi")) != 0 {
		t.Errorf("overhead %v, want the class's", got.Spec.Overhead)
	}
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("missing-class", "nope"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), `RuntimeClass "nope" not found`) {
		t.Errorf("missing class: %v, want 403", err)
	}
	byHand := pod("by-hand", "")
	byHand.Spec.Overhead = overhead
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, byHand, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("overhead without a class: %v, want 403", err)
	}
	if err := rcs.Delete(ctx, "kata", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}
