package registry

import (
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestBindPod(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	base := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "9"},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}}}}
	bound := base.DeepCopy()
	bound.Spec.NodeName = "n0"
	deleting := base.DeepCopy()
	deleting.DeletionTimestamp = &now
	gated := base.DeepCopy()
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}}
	to := func(uid types.UID) *corev1.Binding {
		return &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: uid, Annotations: map[string]string{"k": "v"}}, Target: corev1.ObjectReference{Name: "n1"}}
	}
	for name, c := range map[string]struct {
		pod  *corev1.Pod
		b    *corev1.Binding
		code int32
	}{
		"binds":            {pod: base, b: to("")},
		"uid precondition": {pod: base, b: to("u1")},
		"other uid":        {pod: base, b: to("u2"), code: http.StatusConflict},
		"already bound":    {pod: bound, b: to(""), code: http.StatusConflict},
		"being deleted":    {pod: deleting, b: to(""), code: http.StatusConflict},
		"scheduling gates": {pod: gated, b: to(""), code: http.StatusConflict},
	} {
		t.Run(name, func(t *testing.T) {
			before := c.pod.DeepCopy()
			got, err := bindPod(c.pod, c.b, now)
			if !semanticEqual(before, c.pod) {
				t.Fatal("bindPod changed its input")
			}
			if c.code != 0 {
				if statusCode(err) != c.code {
					t.Fatalf("err %v, want %d", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cond := got.Status.Conditions[0]
			if got.Spec.NodeName != "n1" || got.Annotations["k"] != "v" || got.ResourceVersion != "" ||
				len(got.Status.Conditions) != 1 || cond.Status != corev1.ConditionTrue || cond.Reason != "" || !cond.LastTransitionTime.Equal(&now) {
				t.Fatalf("bound pod %+v", got)
			}
		})
	}
}

func TestValidateBinding(t *testing.T) {
	for name, c := range map[string]struct {
		b    corev1.Binding
		code int32
	}{
		"ok":             {b: corev1.Binding{Target: corev1.ObjectReference{Name: "n"}}},
		"other name":     {b: corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Target: corev1.ObjectReference{Name: "n"}}, code: http.StatusBadRequest},
		"other ns":       {b: corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: "x"}, Target: corev1.ObjectReference{Name: "n"}}, code: http.StatusBadRequest},
		"no target name": {b: corev1.Binding{}, code: http.StatusUnprocessableEntity},
	} {
		err := validateBinding(&c.b, "ns", "p")
		if (c.code == 0 && err != nil) || (c.code != 0 && statusCode(err) != c.code) {
			t.Errorf("%s: %v, want %d", name, err, c.code)
		}
	}
}
