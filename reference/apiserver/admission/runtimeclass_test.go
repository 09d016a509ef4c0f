package admission

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeRuntimeClasses is a RuntimeClassGetter over a map.
type fakeRuntimeClasses map[string]*nodev1.RuntimeClass

func (f fakeRuntimeClasses) GetRuntimeClass(_ context.Context, name string) (*nodev1.RuntimeClass, error) {
	if rc, ok := f[name]; ok {
		return rc, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Group: "node.k8s.io", Resource: "runtimeclasses"}, name)
}

func TestRuntimeClassAdmission(t *testing.T) {
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	classes := fakeRuntimeClasses{
		"kata": {ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata", Overhead: &nodev1.Overhead{PodFixed: overhead},
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "kata"},
				Tolerations: []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}},
		"plain": {ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Handler: "runc"},
	}
	pl := NewRuntimeClass(classes)
	pod := func(class string, mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
		if class != "" {
			p.Spec.RuntimeClassName = &class
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	create := func(p *corev1.Pod) *Attributes {
		return &Attributes{Operation: Create, Resource: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "default", Name: "p", Object: p}
	}
	run := func(p *corev1.Pod) error {
		a := create(p)
		if err := pl.Admit(context.Background(), a); err != nil {
			return err
		}
		return pl.Validate(context.Background(), a)
	}
	for name, tc := range map[string]struct {
		pod     *corev1.Pod
		wantErr string // substring of a 403's message; "" for admitted
		check   func(*corev1.Pod) bool
	}{
		"no class":      {pod: pod("", nil), check: func(p *corev1.Pod) bool { return p.Spec.Overhead == nil }},
		"missing class": {pod: pod("nope", nil), wantErr: `RuntimeClass "nope" not found`},
		"overhead set from the class": {pod: pod("kata", nil), check: func(p *corev1.Pod) bool {
			return sameResources(p.Spec.Overhead, overhead) && p.Spec.NodeSelector["sandbox"] == "kata" &&
				len(p.Spec.Tolerations) == 1 && p.Spec.Tolerations[0].Key == "sandbox"
		}},
		"same overhead already set": {pod: pod("kata", func(p *corev1.Pod) {
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.25"), corev1.ResourceMemory: resource.MustParse("64Mi")}
		}), check: func(p *corev1.Pod) bool { return sameResources(p.Spec.Overhead, overhead) }},
		"other overhead set": {pod: pod("kata", func(p *corev1.Pod) {
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}), wantErr: "doesn't match RuntimeClass's defined Overhead"},
		"overhead without a class": {pod: pod("", func(p *corev1.Pod) {
			p.Spec.Overhead = overhead
		}), wantErr: "Pod Overhead set without corresponding RuntimeClass"},
		"overhead with a class without one": {pod: pod("plain", func(p *corev1.Pod) {
			p.Spec.Overhead = overhead
		}), wantErr: "Pod Overhead set without corresponding RuntimeClass"},
		"node selector conflict": {pod: pod("kata", func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"sandbox": "gvisor"}
		}), wantErr: "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = kata"},
		"toleration not duplicated": {pod: pod("kata", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}), check: func(p *corev1.Pod) bool { return len(p.Spec.Tolerations) == 1 }},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(tc.pod)
			if tc.wantErr != "" {
				var se *apierrors.StatusError
				if !errors.As(err, &se) || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want 403 with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(tc.pod) {
				t.Errorf("pod after admission: %+v", tc.pod.Spec)
			}
		})
	}
	// Only pod creates are concerned: an update naming a missing class passes.
	a := create(pod("nope", nil))
	a.Operation = Update
	a.OldObject = pod("nope", nil)
	if err := pl.Admit(context.Background(), a); err != nil {
		t.Errorf("update: %v", err)
	}
}
