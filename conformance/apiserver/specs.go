package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
)

func configMap(name string, labels map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string]string{"k": "v"}}
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}}
}

func describeCRUD(t Target) {
	Describe("API server CRUD", func() {
		f := newFixture(t)

		It("creates, gets, updates and deletes an object with server-set uid, resourceVersion and creationTimestamp", harness.Labels(CapCRUD), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			created, err := cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(created.UID).NotTo(BeEmpty(), "uid")
			Expect(created.ResourceVersion).NotTo(BeEmpty(), "resourceVersion")
			Expect(created.CreationTimestamp.IsZero()).To(BeFalse(), "creationTimestamp")

			_, err = cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
			Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "second create: %v", err)

			got, err := cms.Get(ctx, "a", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Data).To(Equal(map[string]string{"k": "v"}))
			got.Data["k"] = "w"
			updated, err := cms.Update(ctx, got, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(updated.ResourceVersion).NotTo(Equal(got.ResourceVersion), "an update changes resourceVersion")
			Expect(updated.UID).To(Equal(created.UID), "an update keeps the uid")

			Expect(cms.Delete(ctx, "a", metav1.DeleteOptions{})).To(Succeed())
			_, err = cms.Get(ctx, "a", metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "get after delete: %v", err)
		}, SpecTimeout(specTimeout))

		It("rejects an update with a stale resourceVersion with 409 Conflict", harness.Labels(CapCRUD), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			cm, err := cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			fresh := cm.DeepCopy()
			fresh.Data["k"] = "1"
			_, err = cms.Update(ctx, fresh, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			cm.Data["k"] = "2"
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			Expect(apierrors.IsConflict(err)).To(BeTrue(), "stale update: %v", err)
			got, err := cms.Get(ctx, "a", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Data["k"]).To(Equal("1"), "the stale update wrote nothing")
		}, SpecTimeout(specTimeout))

		It("loses no update under concurrent read-modify-write with retries on conflict", harness.Labels(CapCRUD), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			const workers, increments = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < increments; i++ {
						backoff := wait.Backoff{Steps: 1000, Duration: 5 * time.Millisecond, Jitter: 1} // no Cap: it would end the retries
						err := retry.RetryOnConflict(backoff, func() error {
							cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
							if err != nil {
								return err
							}
							n, _ := strconv.Atoi(cm.Data["n"])
							cm.Data["n"] = strconv.Itoa(n + 1)
							_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
							return err
						})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				Expect(err).NotTo(HaveOccurred())
			}
			cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cm.Data["n"]).To(Equal(strconv.Itoa(workers*increments)), "every successful update must count")
		}, SpecTimeout(specTimeout))

		It("generates a name from generateName", harness.Labels(CapCRUD), func(ctx SpecContext) {
			cm := configMap("", nil)
			cm.GenerateName = "gen-"
			got, err := f.client.CoreV1().ConfigMaps(f.ns).Create(ctx, cm, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Name).To(HavePrefix("gen-"))
			Expect(len(got.Name)).To(BeNumerically(">", len("gen-")))
		}, SpecTimeout(specTimeout))
	})
}

func describeList(t Target) {
	Describe("API server list", func() {
		f := newFixture(t)

		It("filters by label and field selectors", harness.Labels(CapList), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			for i := 0; i < 6; i++ {
				_, err := cms.Create(ctx, configMap(fmt.Sprintf("c%d", i), map[string]string{"parity": []string{"even", "odd"}[i%2]}), metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "parity=even"})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).To(HaveLen(3))
			l, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=c4"})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).To(HaveLen(1))
			_, err = cms.List(ctx, metav1.ListOptions{LabelSelector: "a in (("})
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "malformed label selector: %v", err)

			pods := f.client.CoreV1().Pods(f.ns)
			p := testPod("bound")
			p.Spec.NodeName = "node-x"
			_, err = pods.Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			_, err = pods.Create(ctx, testPod("pending"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			pl, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-x"})
			Expect(err).NotTo(HaveOccurred())
			Expect(pl.Items).To(HaveLen(1))
			Expect(pl.Items[0].Name).To(Equal("bound"))
		}, SpecTimeout(specTimeout))

		It("pages with limit and continue through every object exactly once", harness.Labels(CapList), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			for i := 0; i < 7; i++ {
				_, err := cms.Create(ctx, configMap(fmt.Sprintf("c%d", i), map[string]string{"conformance": "paging"}), metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			seen := map[string]int{}
			// The selector keeps out what controllers add (kube-root-ca.crt).
			opts := metav1.ListOptions{Limit: 3, LabelSelector: "conformance=paging"}
			pages := 0
			for {
				l, err := cms.List(ctx, opts)
				Expect(err).NotTo(HaveOccurred())
				Expect(len(l.Items)).To(BeNumerically("<=", 3), "a page holds at most limit items")
				pages++
				for _, it := range l.Items {
					seen[it.Name]++
				}
				if l.Continue == "" {
					break
				}
				opts.Continue = l.Continue
			}
			Expect(seen).To(HaveLen(7))
			for name, n := range seen {
				Expect(n).To(Equal(1), "%s listed %d times", name, n)
			}
			Expect(pages).To(BeNumerically(">=", 3))
		}, SpecTimeout(specTimeout))
	})
}

func nextEvent(ctx context.Context, w watch.Interface) watch.Event {
	GinkgoHelper()
	select {
	case ev, ok := <-w.ResultChan():
		Expect(ok).To(BeTrue(), "the watch ended early")
		return ev
	case <-ctx.Done():
		Fail("no watch event before the spec's deadline")
	case <-time.After(20 * time.Second):
		Fail("no watch event within 20s")
	}
	return watch.Event{}
}

func describeWatch(t Target) {
	Describe("API server watch", func() {
		f := newFixture(t)

		It("delivers ADDED, MODIFIED and DELETED in order and resumes from a resourceVersion", harness.Labels(CapWatch), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			l, err := cms.List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
			Expect(err).NotTo(HaveOccurred())
			defer w.Stop()
			cm, err := cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			cm.Data["k"] = "w"
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cms.Delete(ctx, "a", metav1.DeleteOptions{})).To(Succeed())
			var seen []watch.EventType
			var added string
			for len(seen) < 3 {
				ev := nextEvent(ctx, w)
				seen = append(seen, ev.Type)
				if ev.Type == watch.Added {
					added = ev.Object.(*corev1.ConfigMap).ResourceVersion
				}
			}
			Expect(seen).To(Equal([]watch.EventType{watch.Added, watch.Modified, watch.Deleted}))

			By("resuming from the ADDED event's resourceVersion")
			w2, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: added})
			Expect(err).NotTo(HaveOccurred())
			defer w2.Stop()
			Expect(nextEvent(ctx, w2).Type).To(Equal(watch.Modified))
			Expect(nextEvent(ctx, w2).Type).To(Equal(watch.Deleted))
		}, SpecTimeout(specTimeout))

		It("feeds informers: they sync the current state and see later changes", harness.Labels(CapWatch), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			_, err := cms.Create(ctx, configMap("before", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			factory := informers.NewSharedInformerFactoryWithOptions(f.client, 0, informers.WithNamespace(f.ns))
			inf := factory.Core().V1().ConfigMaps().Informer()
			stop := make(chan struct{})
			defer close(stop)
			factory.Start(stop)
			Expect(cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)).To(BeTrue(), "informer sync")
			_, exists, _ := inf.GetStore().GetByKey(f.ns + "/before")
			Expect(exists).To(BeTrue(), "the synced informer holds the existing object")
			_, err = cms.Create(ctx, configMap("after", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Eventually(func() bool {
				_, exists, _ := inf.GetStore().GetByKey(f.ns + "/after")
				return exists
			}).WithContext(ctx).WithTimeout(20*time.Second).Should(BeTrue(), "the informer sees a new object")
		}, SpecTimeout(specTimeout))
	})
}

func describePatch(t Target) {
	Describe("API server patch", func() {
		f := newFixture(t)

		It("applies JSON merge, JSON and strategic merge patches", harness.Labels(CapPatch), func(ctx SpecContext) {
			pods := f.client.CoreV1().Pods(f.ns)
			p := testPod("p")
			p.Labels = map[string]string{"a": "1"}
			_, err := pods.Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			got, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"metadata":{"labels":{"b":"2"}}}`), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Labels).To(Equal(map[string]string{"a": "1", "b": "2"}))
			got, err = pods.Patch(ctx, "p", types.JSONPatchType, []byte(`[{"op":"remove","path":"/metadata/labels/a"}]`), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Labels).To(Equal(map[string]string{"b": "2"}))
			got, err = pods.Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"spec":{"containers":[{"name":"c","image":"registry.k8s.io/pause:3.9"}]}}`), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Spec.Containers).To(HaveLen(1), "strategic merge merges containers by name")
			Expect(got.Spec.Containers[0].Image).To(Equal("registry.k8s.io/pause:3.9"))
		}, SpecTimeout(specTimeout))

		It("patches through the dynamic client", harness.Labels(CapPatch), func(ctx SpecContext) {
			gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "d"}, "data": map[string]any{"x": "1"}}}
			_, err := f.dynamic.Resource(gvr).Namespace(f.ns).Create(ctx, u, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			got, err := f.dynamic.Resource(gvr).Namespace(f.ns).Patch(ctx, "d", types.MergePatchType, []byte(`{"data":{"y":"2"}}`), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Object["data"]).To(Equal(map[string]any{"x": "1", "y": "2"}))
		}, SpecTimeout(specTimeout))
	})
}

func describeStatus(t Target) {
	Describe("API server status subresource", func() {
		f := newFixture(t)

		It("keeps status on main-resource updates, spec on status updates, and bumps generation on spec changes", harness.Labels(CapStatus), func(ctx SpecContext) {
			labels := map[string]string{"app": "d"}
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: testPod("x").Spec}}}
			deps := f.client.AppsV1().Deployments(f.ns)
			d, err := deps.Create(ctx, d, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(d.Generation).To(Equal(int64(1)))

			d.Status.ObservedGeneration = 1
			d.Status.Replicas = 5
			d.Spec.Replicas = ptr.To[int32](9)
			st, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Status.Replicas).To(Equal(int32(5)), "/status writes status")
			Expect(*st.Spec.Replicas).To(Equal(int32(1)), "/status ignores spec")
			Expect(st.Generation).To(Equal(int64(1)), "a status update keeps the generation")

			st.Status.Replicas = 0
			st.Spec.Replicas = ptr.To[int32](2)
			up, err := deps.Update(ctx, st, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(up.Status.Replicas).To(Equal(int32(5)), "the main resource ignores status")
			Expect(*up.Spec.Replicas).To(Equal(int32(2)))
			Expect(up.Generation).To(Equal(int64(2)), "a spec change bumps the generation")
		}, SpecTimeout(specTimeout))
	})
}

func describeValidation(t Target) {
	Describe("API server validation", func() {
		f := newFixture(t)

		It("rejects invalid objects with 422 Invalid naming the fields, and writes nothing", harness.Labels(CapValidation), func(ctx SpecContext) {
			p := testPod("Not_A_Valid_Name")
			p.Spec.Containers[0].Image = ""
			_, err := f.client.CoreV1().Pods(f.ns).Create(ctx, p, metav1.CreateOptions{})
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
			var fieldsSeen []string
			for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
				fieldsSeen = append(fieldsSeen, c.Field)
			}
			Expect(fieldsSeen).To(ContainElements("metadata.name", "spec.containers[0].image"))
			l, err := f.client.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).To(BeEmpty())
		}, SpecTimeout(specTimeout))

		It("rejects unknown fields with 400 BadRequest under fieldValidation=Strict", harness.Labels(CapValidation), func(ctx SpecContext) {
			gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "s"}, "bogus": true}}
			_, err := f.dynamic.Resource(gvr).Namespace(f.ns).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "want 400 BadRequest, got %v", err)
			Expect(err.Error()).To(ContainSubstring(`unknown field "bogus"`))
		}, SpecTimeout(specTimeout))
	})
}
