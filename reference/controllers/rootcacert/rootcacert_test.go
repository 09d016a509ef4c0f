package rootcacert

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlan(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
	now := metav1.Now()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	good := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "ns",
		Annotations: map[string]string{DescriptionAnnotation: Description}}, Data: map[string]string{DataKey: string(ca)}}
	stale := good.DeepCopy()
	stale.Data[DataKey] = "old"
	stale.Data["extra"] = "kept"
	stale.Labels = map[string]string{"l": "v"}
	noAnno := good.DeepCopy()
	noAnno.Annotations = nil
	for _, tc := range []struct {
		name     string
		ns       *corev1.Namespace
		existing *corev1.ConfigMap
		want     Action
	}{
		{"absent is created", ns, nil, Create},
		{"identical is left alone", ns, good, None},
		{"stale CA is updated", ns, stale, Update},
		{"missing description is updated", ns, noAnno, Update},
		{"terminating namespace gets nothing", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, nil, None},
		{"namespace being deleted gets nothing", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", DeletionTimestamp: &now}}, nil, None},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cm := Plan(tc.ns, tc.existing, ca)
			if got != tc.want {
				t.Fatalf("Plan = %v, want %v", got, tc.want)
			}
			if got == None {
				if cm != nil {
					t.Fatalf("None with a ConfigMap %v", cm)
				}
				return
			}
			if cm.Name != ConfigMapName || cm.Namespace != "ns" || cm.Data[DataKey] != string(ca) || cm.Annotations[DescriptionAnnotation] != Description {
				t.Fatalf("ConfigMap = %+v", cm)
			}
			if tc.existing != nil {
				for k, v := range tc.existing.Data {
					if k != DataKey && cm.Data[k] != v {
						t.Fatalf("data %q lost: %v", k, cm.Data)
					}
				}
				if tc.existing.Labels["l"] != cm.Labels["l"] {
					t.Fatalf("labels lost")
				}
			}
		})
	}
	if stale.Data[DataKey] != "old" {
		t.Fatal("Plan changed its input")
	}
}
