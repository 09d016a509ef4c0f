package serviceaccount

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMissing(t *testing.T) {
	now := metav1.Now()
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	noPhase := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	deleting := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "d", DeletionTimestamp: &now}}
	for _, tc := range []struct {
		name   string
		ns     *corev1.Namespace
		have   []string
		wanted []string
		want   []string
	}{
		{"active namespace without default gets it", active, nil, []string{"default"}, []string{"default"}},
		{"namespace without phase yet counts as active", noPhase, nil, []string{"default"}, []string{"default"}},
		{"present one is not created again", active, []string{"default"}, []string{"default"}, nil},
		{"only the absent ones, in order", active, []string{"b"}, []string{"a", "b", "c"}, []string{"a", "c"}},
		{"terminating namespace gets none", terminating, nil, []string{"default"}, nil},
		{"namespace being deleted gets none", deleting, nil, []string{"default"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Missing(tc.ns, func(n string) bool { return slices.Contains(tc.have, n) }, tc.wanted)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Missing = %v, want %v", got, tc.want)
			}
		})
	}
}
