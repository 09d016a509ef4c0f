package apiserver

import (
	"net/http/httptest"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubelab/kubelab/plugins/store/memory"
)

// BenchmarkTrackCreate is the field manager's work on a pod create (an
// Update over an empty live object): the server's own field manager, and
// apimachinery's default one over the same schemas (the scheme's safe
// convertor, every object validated) for comparison.
func BenchmarkTrackCreate(b *testing.B) {
	st := memory.New(memory.Options{})
	defer func() { _ = st.Close() }()
	s, err := New(Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	res := s.table.Lookup("", "v1", "pods")
	req := httptest.NewRequest("POST", "/api/v1/namespaces/default/pods", nil)
	req.Header.Set("User-Agent", "bench/1.0")
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}}}
	b.Run("server", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := s.trackUpdate(req, res, "", nil, p.DeepCopy()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("default", func(b *testing.B) {
		o := s.openAPIDefinitions()
		gvk := res.GroupVersionKind()
		fm, err := managedfields.NewDefaultFieldManager(o.tc, scheme.Scheme, nil, scheme.Scheme, gvk, gvk.GroupVersion(), "", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer reportCPU(b)()
		for i := 0; i < b.N; i++ {
			var live runtime.Object = res.New()
			fm.UpdateNoErrors(live, p.DeepCopy(), "bench")
		}
	})
}

// reportCPU reports the process's CPU time per op (user + system), which a
// shared, loaded machine distorts less than wall time: call it after the
// setup and run what it returns at the end.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
