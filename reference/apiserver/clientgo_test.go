package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/plugins/store/memory"
	"github.com/kubelab/kubelab/reference/apiserver"
	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
			},
		},
	}
}

func TestGenerateNameAndValidation(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	p := pod("", nil)
	p.GenerateName = "gen-"
	got, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
	if err != nil || !strings.HasPrefix(got.Name, "gen-") || len(got.Name) != len("gen-")+5 {
		t.Fatalf("generateName: %v %v", got.Name, err)
	}
	bad := pod("Bad_Name", nil)
	bad.Spec.Containers = nil
	_, err = s.Client.CoreV1().Pods("default").Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want Invalid, got %v", err)
	}
	st := err.(apierrors.APIStatus).Status()
	var fields []string
	for _, c := range st.Details.Causes {
		fields = append(fields, c.Field)
	}
	sort.Strings(fields)
	if strings.Join(fields, ",") != "metadata.name,spec.containers" {
		t.Fatalf("causes: %v", st.Details.Causes)
	}
}

func TestGenerationAndStatusSplit(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	deps := s.Client.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, deployment("web", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 || *d.Spec.RevisionHistoryLimit != 10 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Fatalf("create: generation %d, defaults %+v", d.Generation, d.Spec)
	}
	// The main resource ignores status.
	d.Status.Replicas = 7
	d.Labels = map[string]string{"x": "y"}
	d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil || d.Status.Replicas != 0 || d.Generation != 1 {
		t.Fatalf("update: status %d generation %d err %v", d.Status.Replicas, d.Generation, err)
	}
	// A spec change bumps the generation.
	d.Spec.Replicas = ptr.To[int32](3)
	d, err = deps.Update(ctx, d, metav1.UpdateOptions{})
	if err != nil || d.Generation != 2 {
		t.Fatalf("spec update: generation %d err %v", d.Generation, err)
	}
	// /status ignores spec.
	d.Status.Replicas = 3
	d.Status.ObservedGeneration = 2
	d.Spec.Replicas = ptr.To[int32](9)
	d, err = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil || d.Status.Replicas != 3 || *d.Spec.Replicas != 3 || d.Generation != 2 {
		t.Fatalf("status update: %+v %v", d, err)
	}
	// scale subresource
	sc, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || sc.Spec.Replicas != 3 || sc.Status.Selector != "app=web" {
		t.Fatalf("get scale: %+v %v", sc, err)
	}
	sc.Spec.Replicas = 5
	if _, err := deps.UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _ = deps.Get(ctx, "web", metav1.GetOptions{})
	if *d.Spec.Replicas != 5 || d.Generation != 3 {
		t.Fatalf("after scale: replicas %d generation %d", *d.Spec.Replicas, d.Generation)
	}
}

func TestPatchTypes(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("p", map[string]string{"a": "1"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		typ   types.PatchType
		patch string
		check func(*corev1.Pod) bool
	}{
		{"merge", types.MergePatchType, `{"metadata":{"labels":{"b":"2"}}}`, func(p *corev1.Pod) bool { return p.Labels["a"] == "1" && p.Labels["b"] == "2" }},
		{"json", types.JSONPatchType, `[{"op":"remove","path":"/metadata/labels/a"}]`, func(p *corev1.Pod) bool { _, ok := p.Labels["a"]; return !ok }},
		{"strategic", types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"c","image":"busybox:1.37"}]}}`,
			func(p *corev1.Pod) bool {
				return len(p.Spec.Containers) == 1 && p.Spec.Containers[0].Image == "busybox:1.37"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pods.Patch(ctx, "p", c.typ, []byte(c.patch), metav1.PatchOptions{FieldManager: "test"})
			if err != nil || !c.check(got) {
				t.Fatalf("patch: %v %v", got, err)
			}
		})
	}
	// Strict field validation rejects unknown fields in a patch's result
	// with 422 Invalid on "patch", as upstream's JSON and merge patchers.
	_, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"spec":{"bogus":1}}`), metav1.PatchOptions{FieldValidation: "Strict"})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
		t.Fatalf("strict: %v", err)
	}
	// A patch carrying a stale resourceVersion conflicts.
	_, err = pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"metadata":{"resourceVersion":"1","labels":{"c":"3"}}}`), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale patch: %v", err)
	}
	// Status patch.
	got, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"status":{"phase":"Running","podIP":"10.0.0.5"}}`), metav1.PatchOptions{}, "status")
	if err != nil || got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.0.0.5" {
		t.Fatalf("status patch: %v %v", got.Status, err)
	}
	if _, err := pods.Patch(ctx, "missing", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("patch missing: %v", err)
	}
}

func TestSelectorsAndPaging(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	for i := 0; i < 25; i++ {
		p := pod(fmt.Sprintf("p-%02d", i), map[string]string{"parity": []string{"even", "odd"}[i%2]})
		if i < 5 {
			p.Spec.NodeName = "node-a"
		}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(opts metav1.ListOptions) int {
		l, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatalf("list %+v: %v", opts, err)
		}
		return len(l.Items)
	}
	for _, c := range []struct {
		opts metav1.ListOptions
		want int
	}{
		{metav1.ListOptions{LabelSelector: "parity=even"}, 13},
		{metav1.ListOptions{LabelSelector: "parity in (odd)"}, 12},
		{metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"}, 5},
		{metav1.ListOptions{FieldSelector: "spec.nodeName=node-a", LabelSelector: "parity=odd"}, 2},
		{metav1.ListOptions{FieldSelector: "metadata.name=p-03"}, 1},
		{metav1.ListOptions{FieldSelector: "status.phase=Pending,spec.schedulerName=default-scheduler"}, 25},
		{metav1.ListOptions{FieldSelector: "spec.nodeName="}, 20},
	} {
		if got := count(c.opts); got != c.want {
			t.Errorf("%+v: %d items, want %d", c.opts, got, c.want)
		}
	}
	for _, bad := range []metav1.ListOptions{{LabelSelector: "a in (("}, {FieldSelector: "spec.bogus=1"}} {
		if _, err := pods.List(ctx, bad); !apierrors.IsBadRequest(err) {
			t.Errorf("%+v: want BadRequest, got %v", bad, err)
		}
	}
	// Paging: 10 at a time, with a selector, over one revision.
	var names []string
	opts := metav1.ListOptions{Limit: 4, LabelSelector: "parity=even"}
	pages := 0
	for {
		l, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if l.Continue == "" {
			break
		}
		if pages == 1 {
			// A write between pages is not seen: one consistent revision.
			if _, err := pods.Create(ctx, pod("p-99", map[string]string{"parity": "even"}), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		opts.Continue = l.Continue
	}
	if len(names) != 13 || pages != 4 {
		t.Fatalf("paged %d names in %d pages: %v", len(names), pages, names)
	}
	if _, err := pods.List(ctx, metav1.ListOptions{Limit: 2, Continue: "garbage"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad continue: %v", err)
	}
}

func TestContinueExpiredAfterCompaction(t *testing.T) {
	st := memory.New(memory.Options{HistoryRevisions: -1})
	t.Cleanup(func() { _ = st.Close() })
	s := apiservertest.StartSecure(t, func(c *apiserver.Config, _ *apiserver.Security) { c.Store = st })
	ctx := ctxT(t)
	cms := s.Client.CoreV1().ConfigMaps("default")
	for i := 0; i < 5; i++ {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("c", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := cms.List(ctx, metav1.ListOptions{Limit: 2})
	if err != nil || l.Continue == "" {
		t.Fatalf("first page: %v %v", l, err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rev, _ := st.Revision(ctx)
	if err := st.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	_, err = cms.List(ctx, metav1.ListOptions{Limit: 2, Continue: l.Continue})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("want 410 Expired, got %v", err)
	}
}

func TestWatchResumeAndExpired(t *testing.T) {
	s := apiservertest.StartSecure(t, func(c *apiserver.Config, _ *apiserver.Security) { c.Cache.HistorySize = 4 })
	ctx := ctxT(t)
	cms := s.Client.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	first.Data = map[string]string{"k": "v"}
	if _, err := cms.Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var seen []watch.EventType
	var lastRV string
	for len(seen) < 2 {
		ev := <-w.ResultChan()
		seen = append(seen, ev.Type)
		lastRV = ev.Object.(*corev1.ConfigMap).ResourceVersion
	}
	if seen[0] != watch.Modified || seen[1] != watch.Deleted {
		t.Fatalf("events %v", seen)
	}
	// Resuming from the last revision sees only what follows.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w2, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: lastRV})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	ev := <-w2.ResultChan()
	if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "b" {
		t.Fatalf("resumed: %v %v", ev.Type, ev.Object)
	}
	// Push the first revision out of the 4-event window: 410 Expired.
	for i := 0; i < 6; i++ {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("x", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The watch cache takes the creates in asynchronously, so until it has
	// seen them the first revision may still be inside its window; retry
	// until the window has moved on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w3, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		ev = <-w3.ResultChan()
		w3.Stop()
		if ev.Type == watch.Error || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ev.Type != watch.Error {
		t.Fatalf("want ERROR, got %v", ev.Type)
	}
	if st, ok := ev.Object.(*metav1.Status); !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("want 410 Expired, got %+v", ev.Object)
	}
}

func TestWatchSelectorTransitions(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "watched=yes"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p, err := pods.Create(ctx, pod("p", map[string]string{"watched": "no"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"yes", "no"} {
		p.Labels["watched"] = v
		if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []watch.EventType
	for len(got) < 2 {
		got = append(got, (<-w.ResultChan()).Type)
	}
	if got[0] != watch.Added || got[1] != watch.Deleted {
		t.Fatalf("events %v, want ADDED then DELETED", got)
	}
}

func TestInformerSync(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	for i := 0; i < 3; i++ {
		if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprint("p", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := informers.NewSharedInformerFactory(s.Client, 0)
	inf := f.Core().V1().Pods().Informer()
	added := make(chan string, 100)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { added <- o.(*corev1.Pod).Name }})
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	if n := len(inf.GetStore().List()); n != 3 {
		t.Fatalf("informer has %d pods", n)
	}
	if _, err := s.Client.CoreV1().Pods("default").Create(ctx, pod("late", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-added:
			if n == "late" {
				return
			}
		case <-deadline:
			t.Fatal("informer never saw the new pod")
		}
	}
}

func TestDynamicClient(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	dc, err := dynamic.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{"name": "l1"}, "spec": map[string]any{"holderIdentity": "me"},
	}}
	if _, err := dc.Resource(gvr).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := dc.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	bad := u.DeepCopy()
	bad.SetName("l2")
	bad.Object["spec"].(map[string]any)["unknownField"] = true
	if _, err := dc.Resource(gvr).Namespace("default").Create(ctx, bad, metav1.CreateOptions{FieldValidation: "Strict"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("strict create: %v", err)
	}
}

func TestLeaderElection(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "test-leader", Namespace: "kube-system"},
		Client:     s.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: "me"},
	}
	led := make(chan struct{})
	go leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) { close(led) }, OnStoppedLeading: func() {}},
	})
	select {
	case <-led:
	case <-ctx.Done():
		t.Fatal("never became leader")
	}
	l, err := s.Client.CoordinationV1().Leases("kube-system").Get(ctx, "test-leader", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "me" {
		t.Fatalf("lease: %+v %v", l, err)
	}
	_ = coordinationv1.Lease{}
}

func TestBindingAndGracefulDelete(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("p", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: %v", err)
	}
	p, _ := pods.Get(ctx, "p", metav1.GetOptions{})
	if p.Spec.NodeName != "n1" || len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Type != corev1.PodScheduled {
		t.Fatalf("bound pod: %+v", p)
	}
	// A bound pod is deleted gracefully: it stays with a deletionTimestamp
	// until deleted with grace period 0 (the kubelet's part).
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("pending delete: %+v %v", p, err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after grace 0: %v", err)
	}
}

func TestFinalizersAndPropagation(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	cms := s.Client.CoreV1().ConfigMaps("default")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("finalized object: %+v %v", got, err)
	}
	got.Finalizers = nil
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after removing the finalizer: %v", err)
	}
	// Orphan: the owner is marked with the orphan finalizer and stays; the
	// dependent is untouched (orphaning it is the garbage collector's job,
	// done here by the test).
	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dep", OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID}}}}
	if _, err := cms.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCached(t, s, func() bool { l, _ := cms.List(ctx, metav1.ListOptions{ResourceVersion: "0"}); return len(l.Items) == 2 })
	if err := cms.Delete(ctx, "owner", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	o, err := cms.Get(ctx, "owner", metav1.GetOptions{})
	if err != nil || o.DeletionTimestamp == nil || !reflect.DeepEqual(o.Finalizers, []string{metav1.FinalizerOrphanDependents}) {
		t.Fatalf("owner deleted with Orphan: %+v %v, want it marked with the orphan finalizer", o, err)
	}
	if d, err := cms.Get(ctx, "dep", metav1.GetOptions{}); err != nil || len(d.OwnerReferences) != 1 {
		t.Fatalf("dependent changed by the API server itself: %+v %v", d, err)
	}
	o.Finalizers = nil
	if _, err := cms.Update(ctx, o, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "owner", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("owner after its orphan finalizer went: %v", err)
	}
	// deletecollection with a selector.
	for i := 0; i < 3; i++ {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("dc", i), Labels: map[string]string{"dc": "yes"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "dc=yes"}); err != nil {
		t.Fatal(err)
	}
	l, _ := cms.List(ctx, metav1.ListOptions{})
	if len(l.Items) != 1 || l.Items[0].Name != "dep" {
		t.Fatalf("after deletecollection: %v", l.Items)
	}
}

func waitCached(t *testing.T, s *apiservertest.Server, ok func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition never held")
}

func TestServiceAllocation(t *testing.T) {
	s := apiservertest.StartSecure(t, func(c *apiserver.Config, _ *apiserver.Security) { c.ServiceClusterIPRange = "10.0.0.0/29" })
	ctx := ctxT(t)
	svcs := s.Client.CoreV1().Services("default")
	svc := func(name string, typ corev1.ServiceType) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Port: 80}}}}
	}
	a, err := svcs.Create(ctx, svc("a", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Spec.ClusterIP == "" || a.Spec.Ports[0].NodePort < 30000 || a.Spec.Ports[0].TargetPort.IntValue() != 80 {
		t.Fatalf("allocation: %+v", a.Spec)
	}
	dup := svc("b", corev1.ServiceTypeClusterIP)
	dup.Spec.ClusterIP = a.Spec.ClusterIP
	if _, err := svcs.Create(ctx, dup, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("duplicate IP: %v", err)
	}
	dupPort := svc("c", corev1.ServiceTypeNodePort)
	dupPort.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort
	if _, err := svcs.Create(ctx, dupPort, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("duplicate node port: %v", err)
	}
	out := svc("d", corev1.ServiceTypeClusterIP)
	out.Spec.ClusterIP = "192.168.0.1"
	if _, err := svcs.Create(ctx, out, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("IP out of range: %v", err)
	}
	if err := svcs.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if s.API.Allocator().Allocated(a.Spec.ClusterIP) {
		t.Fatalf("%s still allocated after delete", a.Spec.ClusterIP)
	}
	dup.Spec.ClusterIP = a.Spec.ClusterIP
	if _, err := svcs.Create(ctx, dup, metav1.CreateOptions{}); err != nil {
		t.Fatalf("reuse released IP: %v", err)
	}
}

// TestNamespaceDeletionTerminates: DELETE of a namespace marks it
// Terminating and leaves its content to the namespace controller; creates
// in it are refused; namespaces/finalize removing spec.finalizers removes
// it, as upstream. spec.finalizers change through /finalize only.
func TestNamespaceDeletionTerminates(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	nss := s.Client.CoreV1().Namespaces()
	created, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tmp"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []corev1.FinalizerName{corev1.FinalizerKubernetes}; !reflect.DeepEqual(created.Spec.Finalizers, want) {
		t.Fatalf("new namespace's spec.finalizers %v, want %v", created.Spec.Finalizers, want)
	}
	cleared := created.DeepCopy()
	cleared.Spec.Finalizers = nil
	if upd, err := nss.Update(ctx, cleared, metav1.UpdateOptions{}); err != nil || len(upd.Spec.Finalizers) != 1 {
		t.Fatalf("update of the main resource changed spec.finalizers: %v, %v", upd, err)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("tmp").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nss.Delete(ctx, "tmp", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := nss.Get(ctx, "tmp", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace gone before it was finalized: %v", err)
	}
	if n.Status.Phase != corev1.NamespaceTerminating || n.DeletionTimestamp == nil {
		t.Fatalf("namespace after DELETE: phase %q, deletionTimestamp %v; want Terminating with a deletionTimestamp", n.Status.Phase, n.DeletionTimestamp)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("tmp").Get(ctx, "x", metav1.GetOptions{}); err != nil {
		t.Fatalf("the API server deleted the namespace's content itself: %v", err)
	}
	_, err = s.Client.CoreV1().ConfigMaps("tmp").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "y"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		t.Fatalf("create in a terminating namespace: %v, want 403 with a NamespaceTerminating cause", err)
	}
	if err := nss.Delete(ctx, "tmp", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("second DELETE of a terminating namespace: %v", err)
	}
	if _, err := nss.Get(ctx, "tmp", metav1.GetOptions{}); err != nil {
		t.Fatalf("second DELETE removed the namespace before it was finalized: %v", err)
	}
	bad := n.DeepCopy()
	bad.Spec.Finalizers = []corev1.FinalizerName{"not a name!"}
	if _, err := nss.Finalize(ctx, bad, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("finalize with an invalid finalizer name: %v, want 422", err)
	}
	n.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx, n, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run finalize: %v", err)
	}
	if _, err := nss.Get(ctx, "tmp", metav1.GetOptions{}); err != nil {
		t.Fatalf("a dry-run finalize removed the namespace: %v", err)
	}
	if _, err := nss.Finalize(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if _, err := nss.Get(ctx, "tmp", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after its last finalizer went: %v, want NotFound", err)
	}
}

var _ = json.Marshal
var _ kubernetes.Interface

// TestEventsSharedStorage: events.k8s.io/v1 and core/v1 are two views of the
// same events, as upstream (the scheduler writes one, kubectl describe reads
// the other).
func TestEventsSharedStorage(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "p.1"},
		EventTime:           metav1.NowMicro(),
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p", UID: "u-1"},
		Reason:              "FailedScheduling",
		Note:                "0/3 nodes are available",
		Type:                corev1.EventTypeWarning,
		Action:              "Scheduling",
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-1",
	}
	if _, err := s.Client.EventsV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := "involvedObject.name=p,involvedObject.namespace=default,involvedObject.uid=u-1"
	var l *corev1.EventList
	waitCached(t, s, func() bool {
		var err error
		l, err = s.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(l.Items) == 1
	})
	if got := l.Items[0]; got.Message != ev.Note || got.Reason != ev.Reason || got.ReportingController != "default-scheduler" {
		t.Fatalf("core view: %+v", got)
	}
	back, err := s.Client.EventsV1().Events("default").Get(ctx, "p.1", metav1.GetOptions{})
	if err != nil || back.Note != ev.Note || back.Regarding.Name != "p" {
		t.Fatalf("events.k8s.io view: %+v %v", back, err)
	}
}

// TestServiceUpdateKeepsAllocations: a PUT that leaves out clusterIP and
// nodePort keeps them (upstream's patchAllocatedValues).
func TestServiceUpdateKeepsAllocations(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	svcs := s.Client.CoreV1().Services("default")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	created, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	put := created.DeepCopy()
	put.Spec.ClusterIP, put.Spec.ClusterIPs, put.Spec.Ports[0].NodePort = "", nil, 0
	put.Labels = map[string]string{"x": "y"}
	got, err := svcs.Update(ctx, put, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.ClusterIP != created.Spec.ClusterIP || got.Spec.Ports[0].NodePort != created.Spec.Ports[0].NodePort {
		t.Fatalf("allocations changed: %+v -> %+v", created.Spec, got.Spec)
	}
}

func TestEvictionHonoursDisruptionBudgets(t *testing.T) {
	s := apiservertest.StartSecure(t, nil)
	ctx := ctxT(t)
	pods := s.Client.CoreV1().Pods("default")
	for _, name := range []string{"a", "b"} {
		p, err := pods.Create(ctx, pod(name, map[string]string{"app": "x"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb"},
		Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}
	pdb, err := s.Client.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status.DisruptionsAllowed, pdb.Status.ObservedGeneration = 1, pdb.Generation // as the disruption controller writes it
	if _, err := s.Client.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	evict := func(name string) error {
		return pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
	}
	if err := evict("a"); err != nil {
		t.Fatalf("first eviction: %v", err)
	}
	if err := evict("b"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("second eviction: want 429, got %v", err)
	}
	if _, err := pods.Get(ctx, "b", metav1.GetOptions{}); err != nil {
		t.Fatalf("b must survive: %v", err)
	}
}
