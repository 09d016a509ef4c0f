package replicationcontroller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestConversion(t *testing.T) {
	three := int32(3)
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "u", Generation: 4},
		Spec: corev1.ReplicationControllerSpec{Replicas: &three, MinReadySeconds: 5, Selector: map[string]string{"app": "x"},
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}},
		Status: corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 3,
			Conditions: []corev1.ReplicationControllerCondition{{Type: corev1.ReplicationControllerReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate"}}},
	}
	rs := ToReplicaSet(rc)
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set{"app": "x"}) || sel.Matches(labels.Set{"app": "y"}) {
		t.Fatalf("selector %v (%v)", rs.Spec.Selector, err)
	}
	if rs.Name != "rc" || rs.UID != "u" || *rs.Spec.Replicas != 3 || rs.Spec.MinReadySeconds != 5 || rs.Spec.Template.Labels["app"] != "x" ||
		rs.Status.Conditions[0].Type != appsv1.ReplicaSetReplicaFailure {
		t.Fatalf("replicaset %+v", rs)
	}
	if back := StatusFromReplicaSet(rs.Status); !apiequality.Semantic.DeepEqual(back, rc.Status) {
		t.Fatalf("status round trip: %+v, want %+v", back, rc.Status)
	}
	rc.Spec.Template = nil
	if rs := ToReplicaSet(rc); len(rs.Spec.Template.Labels) != 0 {
		t.Fatal("nil template must convert to an empty one")
	}
}
