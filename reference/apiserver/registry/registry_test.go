package registry

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/spec"
)

func TestContinueToken(t *testing.T) {
	tok := EncodeContinue("/registry/pods/default", "/registry/pods/default/web-3", 42)
	after, rev, err := DecodeContinue("/registry/pods/default", tok)
	if err != nil || after != "/registry/pods/default/web-3" || rev != 42 {
		t.Fatalf("round trip: %q %d %v", after, rev, err)
	}
	for name, bad := range map[string]string{
		"not base64":   "!!!",
		"not json":     "bm90IGpzb24",
		"wrong v":      EncodeContinue("/p", "/p/x", 1)[:10],
		"zero rev":     EncodeContinue("/p", "/p/x", 0),
		"dot-dot":      EncodeContinue("/p", "/p/../secrets/x", 3),
		"empty string": "",
	} {
		if _, _, err := DecodeContinue("/p", bad); !apierrors.IsBadRequest(err) {
			t.Errorf("%s: want BadRequest, got %v", name, err)
		}
	}
}

func TestValidateListOptions(t *testing.T) {
	cases := []struct {
		name  string
		o     ListOptions
		watch bool
		ok    bool
	}{
		{"empty", ListOptions{}, false, true},
		{"rv 0", ListOptions{ResourceVersion: "0"}, false, true},
		{"exact", ListOptions{ResourceVersion: "5", ResourceVersionMatch: metav1.ResourceVersionMatchExact}, false, true},
		{"match without rv", ListOptions{ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}, false, false},
		{"exact rv 0", ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchExact}, false, false},
		{"continue with rv", ListOptions{ResourceVersion: "5", Continue: "x"}, false, false},
		{"unknown match", ListOptions{ResourceVersion: "5", ResourceVersionMatch: "Newest"}, false, false},
		{"non-numeric rv", ListOptions{ResourceVersion: "abc"}, false, false},
	}
	for _, c := range cases {
		err := ValidateListOptions(c.o, c.watch)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestStrategyValidation(t *testing.T) {
	table, err := NewTable(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	validPod := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	}
	labels := map[string]string{"app": "x"}
	validDeploy := func() *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: validPod().Spec}}}
	}
	cases := []struct {
		name   string
		res    string
		obj    runtime.Object
		fields []string // the field paths of the expected errors; nil = valid
	}{
		{"valid pod", "pods", validPod(), nil},
		{"pod without containers", "pods", func() runtime.Object { p := validPod(); p.Spec.Containers = nil; return p }(), []string{"spec.containers"}},
		{"pod duplicate container names", "pods", func() runtime.Object {
			p := validPod()
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
			return p
		}(), []string{"spec.containers[1].name"}},
		{"pod without image", "pods", func() runtime.Object { p := validPod(); p.Spec.Containers[0].Image = ""; return p }(), []string{"spec.containers[0].image"}},
		{"pod bad name", "pods", func() runtime.Object { p := validPod(); p.Name = "UPPER"; return p }(), []string{"metadata.name"}},
		{"pod bad label", "pods", func() runtime.Object { p := validPod(); p.Labels = map[string]string{"a b": "c"}; return p }(), []string{"metadata.labels"}},
		{"valid deployment", "deployments", validDeploy(), nil},
		{"deployment selector mismatch", "deployments", func() runtime.Object {
			d := validDeploy()
			d.Spec.Template.Labels = map[string]string{"app": "other"}
			return d
		}(), []string{"spec.template.metadata.labels"}},
		{"deployment negative replicas", "deployments", func() runtime.Object { d := validDeploy(); d.Spec.Replicas = ptr.To[int32](-1); return d }(), []string{"spec.replicas"}},
		{"service without ports", "services", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}, []string{"spec.ports"}},
		{"service bad port", "services", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: 70000, Protocol: corev1.ProtocolTCP}}}}, []string{"spec.ports[0].port"}},
		{"namespace with dots", "namespaces", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a.b"}}, []string{"metadata.name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *Resource
			for _, x := range table.All() {
				if x.Name == c.res {
					r = x
					break
				}
			}
			if r.Strategy.Default != nil {
				r.Strategy.Default(c.obj)
			}
			errs := validateMeta(r, c.obj)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.fields) && !(len(got) == 0 && len(c.fields) == 0) {
				t.Fatalf("errors %v, want fields %v", errs, c.fields)
			}
		})
	}
}

// countingStore counts Watch calls.
type countingStore struct {
	spec.Store
	watches atomic.Int64
}

func (s *countingStore) Watch(ctx context.Context, prefix string, after int64) (spec.Watcher, error) {
	s.watches.Add(1)
	return s.Store.Watch(ctx, prefix, after)
}

// TestOneStoreWatchForManyWatchers: 1000 API watchers cost one store watch,
// and every one of them sees the change.
func TestOneStoreWatchForManyWatchers(t *testing.T) {
	mem := memory.New(memory.Options{})
	defer mem.Close()
	st := &countingStore{Store: mem}
	table, _ := NewTable(Builtin())
	c := NewCache(st, table, CacheOptions{})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cms := table.Lookup("", "v1", "configmaps")
	var watchers []*CacheWatcher
	for i := 0; i < 1000; i++ {
		w, err := c.Watch(cms, WatchOptions{Revision: c.Revision()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watchers = append(watchers, w)
	}
	s := &Storage{Store: st, Table: table, Cache: c}
	if _, err := s.Create(context.Background(), cms, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers {
		select {
		case ev := <-w.Events():
			if ev.Type != watch.Added {
				t.Fatalf("watcher %d: %v", i, ev.Type)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d saw nothing", i)
		}
	}
	if n := st.watches.Load(); n != 1 {
		t.Fatalf("%d store watches, want 1", n)
	}
}

// TestWaitFreshProgress: a consistent read after writes outside the cached
// key space still completes (the cache writes its progress key).
func TestWaitFreshProgress(t *testing.T) {
	mem := memory.New(memory.Options{})
	defer mem.Close()
	table, _ := NewTable(Builtin())
	c := NewCache(mem, table, CacheOptions{})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx := context.Background()
	if _, err := mem.Create(ctx, "/elsewhere/k", []byte("v"), spec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFresh(ctx, 0); err != nil {
		t.Fatal(err)
	}
	rev, _ := mem.Revision(ctx)
	if err := c.WaitFresh(ctx, rev+1000); err == nil || !apierrors.IsTimeout(err) {
		t.Fatalf("future revision: want Timeout (too large resource version), got %v", err)
	}
}
