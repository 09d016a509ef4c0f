package apiserver

import (
	"context"
	"errors"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
)

// holdFinalizer is a finalizer no controller knows: it keeps an object
// until the spec removes it.
const holdFinalizer = "conformance.kubelab.io/hold"

// dropFinalizers removes every finalizer of the ConfigMap name, if it still
// exists, so that it goes away.
func dropFinalizers(ctx context.Context, f *fixture, name string) {
	_, err := f.client.CoreV1().ConfigMaps(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		Fail("removing the finalizers of " + name + ": " + err.Error())
	}
}

func describeListSemantics(t Target) {
	Describe("API server list", func() {
		f := newFixture(t)

		It("filters pods by the field selectors metadata.name, metadata.namespace, spec.nodeName, status.phase and spec.schedulerName", harness.Labels(CapList), func(ctx SpecContext) {
			pods := f.client.CoreV1().Pods(f.ns)
			running := testPod("running")
			running.Spec.NodeName = "conformance-node"
			running, err := pods.Create(ctx, running, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(running.Spec.SchedulerName).To(Equal(corev1.DefaultSchedulerName), "schedulerName is defaulted")
			running.Status.Phase = corev1.PodRunning
			_, err = pods.UpdateStatus(ctx, running, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			pending := testPod("pending")
			pending.Spec.SchedulerName = "other-scheduler"
			pending, err = pods.Create(ctx, pending, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(pending.Status.Phase).To(Equal(corev1.PodPending), "a new pod is Pending")

			for _, c := range []struct {
				selector string
				want     []string
			}{
				{"metadata.name=pending", []string{"pending"}},
				{"metadata.name!=pending", []string{"running"}},
				{"metadata.namespace=" + f.ns, []string{"pending", "running"}},
				{"metadata.namespace=" + f.ns + "-other", []string{}},
				{"spec.nodeName=conformance-node", []string{"running"}},
				{"spec.nodeName=", []string{"pending"}},
				{"status.phase=Running", []string{"running"}},
				{"status.phase!=Running", []string{"pending"}},
				{"status.phase=Pending,spec.nodeName=", []string{"pending"}},
				{"spec.schedulerName=other-scheduler", []string{"pending"}},
				{"spec.schedulerName=" + corev1.DefaultSchedulerName, []string{"running"}},
			} {
				l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: c.selector})
				Expect(err).NotTo(HaveOccurred(), "fieldSelector %s", c.selector)
				Expect(podNames(l.Items)).To(Equal(c.want), "fieldSelector %s", c.selector)
			}

			By("listing across namespaces with metadata.namespace")
			l, err := f.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "metadata.namespace=" + f.ns + ",status.phase=Running"})
			Expect(err).NotTo(HaveOccurred())
			Expect(podNames(l.Items)).To(Equal([]string{"running"}))

			_, err = pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=1"})
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "an unsupported field label: want 400 BadRequest, got %v", err)
		}, SpecTimeout(specTimeout))

		It("serves resourceVersionMatch=Exact at the given resourceVersion and NotOlderThan at least as fresh", harness.Labels(CapList), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			const sel = "conformance=rv"
			mine := map[string]string{"conformance": "rv"}
			_, err := cms.Create(ctx, configMap("first", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			before, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel})
			Expect(err).NotTo(HaveOccurred())
			rv := before.ResourceVersion
			Expect(rv).NotTo(BeEmpty())
			_, err = cms.Create(ctx, configMap("second", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			first, err := cms.Get(ctx, "first", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			first.Data["k"] = "changed"
			_, err = cms.Update(ctx, first, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())

			exact, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
			Expect(err).NotTo(HaveOccurred())
			Expect(exact.ResourceVersion).To(Equal(rv), "an Exact list is at the requested resourceVersion")
			Expect(exact.Items).To(HaveLen(1), "the state at the resourceVersion: only the first object")
			Expect(exact.Items[0].Name).To(Equal("first"))
			Expect(exact.Items[0].Data["k"]).To(Equal("v"), "the object as it was at the resourceVersion")

			nt, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
			Expect(err).NotTo(HaveOccurred())
			Expect(nt.Items).NotTo(BeEmpty(), "NotOlderThan includes what existed at the resourceVersion")

			latest, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel})
			Expect(err).NotTo(HaveOccurred())
			Expect(latest.Items).To(HaveLen(2), "a list without resourceVersion is a consistent read of the latest state")

			any, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: "0"})
			Expect(err).NotTo(HaveOccurred(), "resourceVersion=0 (any)")
			Expect(any.ResourceVersion).NotTo(BeEmpty())

			_, err = cms.List(ctx, metav1.ListOptions{ResourceVersionMatch: metav1.ResourceVersionMatchExact})
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "resourceVersionMatch without resourceVersion: want 422 Invalid, got %v", err)
			_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchExact})
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "Exact with resourceVersion 0: want 422 Invalid, got %v", err)
		}, SpecTimeout(specTimeout))
	})
}

func describeWatchSemantics(t Target) {
	Describe("API server watch", func() {
		f := newFixture(t)

		It("answers a watch from a resourceVersion older than its history with 410 Gone (Expired)", harness.Labels(CapWatch), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			_, err := cms.Create(ctx, configMap("a", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			// Revision 1 precedes the spec's namespace. A server that no
			// longer keeps that history answers 410; one that still does (a
			// fresh kube-apiserver: etcd has not compacted and its watch
			// cache holds everything since it started) replays it, and then
			// the namespace's history starts with the creation of "a".
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
			if err != nil {
				Expect(apierrors.IsResourceExpired(err) || apierrors.IsGone(err)).To(BeTrue(), "want 410, got %v", err)
				return
			}
			defer w.Stop()
			ev := nextEvent(ctx, w)
			if ev.Type != watch.Error {
				Expect(ev.Type).To(Equal(watch.Added), "a watch from revision 1 either fails with 410 or replays the history from there")
				Expect(ev.Object.(*corev1.ConfigMap).Name).To(Equal("a"), "the replayed history starts with the spec's first object")
				return
			}
			st, ok := ev.Object.(*metav1.Status)
			Expect(ok).To(BeTrue(), "the ERROR event carries a Status, got %T", ev.Object)
			Expect(st.Code).To(Equal(int32(410)))
			Expect(st.Reason).To(Or(Equal(metav1.StatusReasonExpired), Equal(metav1.StatusReasonGone)))
		}, SpecTimeout(specTimeout))

		It("ends a watch after timeoutSeconds, sends only well-formed bookmarks, and marks the end of initial events", harness.Labels(CapWatch), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			for _, n := range []string{"a", "b"} {
				_, err := cms.Create(ctx, configMap(n, map[string]string{"conformance": "watch"}), metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			l, err := cms.List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			// The selector keeps out what controllers add (kube-root-ca.crt).
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion, LabelSelector: "conformance=watch",
				TimeoutSeconds: ptr.To[int64](3), AllowWatchBookmarks: true})
			Expect(err).NotTo(HaveOccurred())
			defer w.Stop()
			_, err = cms.Create(ctx, configMap("c", map[string]string{"conformance": "watch"}), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			var types []watch.EventType
			deadline := time.After(40 * time.Second)
		read:
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						break read
					}
					if ev.Type == watch.Bookmark {
						cm, ok := ev.Object.(*corev1.ConfigMap)
						Expect(ok).To(BeTrue(), "a bookmark carries an object of the watched kind, got %T", ev.Object)
						Expect(cm.ResourceVersion).NotTo(BeEmpty(), "a bookmark carries a resourceVersion")
						Expect(cm.Name).To(BeEmpty(), "a bookmark carries only a resourceVersion")
						continue
					}
					types = append(types, ev.Type)
				case <-deadline:
					Fail("the watch did not end after timeoutSeconds=3")
				case <-ctx.Done():
					Fail("spec deadline")
				}
			}
			Expect(types).To(Equal([]watch.EventType{watch.Added}), "the one change after the list")

			By("a watch with sendInitialEvents")
			w2, err := cms.Watch(ctx, metav1.ListOptions{LabelSelector: "conformance=watch", SendInitialEvents: ptr.To(true),
				ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true})
			Expect(err).NotTo(HaveOccurred())
			defer w2.Stop()
			var added []string
			for {
				ev := nextEvent(ctx, w2)
				if ev.Type == watch.Bookmark {
					cm := ev.Object.(*corev1.ConfigMap)
					if cm.Annotations[metav1.InitialEventsAnnotationKey] == "true" {
						break
					}
					continue
				}
				Expect(ev.Type).To(Equal(watch.Added), "initial events are ADDED")
				added = append(added, ev.Object.(*corev1.ConfigMap).Name)
			}
			Expect(added).To(ConsistOf("a", "b", "c"), "the initial events are the current state, then the bookmark")
		}, SpecTimeout(specTimeout))
	})
}

func describeCreateDefaults(t Target) {
	Describe("API server CRUD", func() {
		f := newFixture(t)

		It("applies defaults on create", harness.Labels(CapCRUD), func(ctx SpecContext) {
			p, err := f.client.CoreV1().Pods(f.ns).Create(ctx, testPod("defaults"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(p.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyAlways))
			Expect(p.Spec.DNSPolicy).To(Equal(corev1.DNSClusterFirst))
			Expect(p.Spec.SchedulerName).To(Equal(corev1.DefaultSchedulerName))
			Expect(p.Spec.TerminationGracePeriodSeconds).To(HaveValue(Equal(int64(corev1.DefaultTerminationGracePeriodSeconds))))
			Expect(p.Spec.Containers[0].ImagePullPolicy).To(Equal(corev1.PullIfNotPresent), "a tagged image is pulled if not present")
			Expect(p.Spec.Containers[0].TerminationMessagePath).To(Equal(corev1.TerminationMessagePathDefault))
			Expect(p.Status.Phase).To(Equal(corev1.PodPending))
		}, SpecTimeout(specTimeout))
	})
}

func describeDelete(t Target) {
	Describe("API server delete", func() {
		f := newFixture(t)

		It("keeps an object with finalizers, marked with a deletionTimestamp, until they are removed", harness.Labels(CapDelete), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			cm := configMap("held", nil)
			cm.Finalizers = []string{holdFinalizer}
			_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cms.Delete(ctx, "held", metav1.DeleteOptions{})).To(Succeed())
			got, err := cms.Get(ctx, "held", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "a finalizer keeps the object")
			Expect(got.DeletionTimestamp).NotTo(BeNil())
			Expect(got.Finalizers).To(Equal([]string{holdFinalizer}))
			Expect(cms.Delete(ctx, "held", metav1.DeleteOptions{})).To(Succeed(), "deleting again is allowed")

			got.Finalizers = nil
			_, err = cms.Update(ctx, got, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Eventually(func() error {
				_, err := cms.Get(ctx, "held", metav1.GetOptions{})
				return err
			}).WithContext(ctx).WithTimeout(20*time.Second).Should(Satisfy(apierrors.IsNotFound), "removing the last finalizer deletes the object")
		}, SpecTimeout(specTimeout))

		It("deletes a pod bound to a node gracefully and an unbound pod at once", harness.Labels(CapDelete), func(ctx SpecContext) {
			pods := f.client.CoreV1().Pods(f.ns)
			bound := testPod("bound")
			bound.Spec.NodeName = "conformance-node"
			_, err := pods.Create(ctx, bound, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			_, err = pods.Create(ctx, testPod("unbound"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())

			Expect(pods.Delete(ctx, "unbound", metav1.DeleteOptions{})).To(Succeed())
			_, err = pods.Get(ctx, "unbound", metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an unbound pod is deleted at once: %v", err)

			Expect(pods.Delete(ctx, "bound", metav1.DeleteOptions{})).To(Succeed())
			p, err := pods.Get(ctx, "bound", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred(), "a bound pod waits for its kubelet")
			Expect(p.DeletionTimestamp).NotTo(BeNil())
			Expect(p.DeletionGracePeriodSeconds).To(HaveValue(Equal(int64(corev1.DefaultTerminationGracePeriodSeconds))))
			Expect(pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})).To(Succeed())
			_, err = pods.Get(ctx, "bound", metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "grace period 0 deletes it: %v", err)
		}, SpecTimeout(specTimeout))

		It("marks an owner deleted with propagationPolicy Foreground or Orphan with the matching finalizer, and deletes at once with Background", harness.Labels(CapDelete), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			for _, c := range []struct {
				name      string
				policy    metav1.DeletionPropagation
				finalizer string
			}{
				{"owner-foreground", metav1.DeletePropagationForeground, metav1.FinalizerDeleteDependents},
				{"owner-orphan", metav1.DeletePropagationOrphan, metav1.FinalizerOrphanDependents},
			} {
				name := c.name
				owner := configMap(name, nil)
				owner.Finalizers = []string{holdFinalizer} // keeps the owner after a garbage collector's work
				owner, err := cms.Create(ctx, owner, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(dropFinalizers, f, name)
				dep := configMap(name+"-dependent", nil)
				dep.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: name, UID: owner.UID}}
				_, err = cms.Create(ctx, dep, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())

				w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: owner.ResourceVersion})
				Expect(err).NotTo(HaveOccurred())
				Expect(cms.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(c.policy)})).To(Succeed())
				// The first change after the delete is the API server's: a
				// garbage collector may act only after it.
				var ev watch.Event
				for ev = nextEvent(ctx, w); ev.Type == watch.Bookmark; ev = nextEvent(ctx, w) {
				}
				w.Stop()
				Expect(ev.Type).To(Equal(watch.Modified), "%s: the owner is updated, not deleted", c.policy)
				marked := ev.Object.(*corev1.ConfigMap)
				Expect(marked.DeletionTimestamp).NotTo(BeNil(), "%s: deletionTimestamp", c.policy)
				Expect(marked.Finalizers).To(ContainElements(holdFinalizer, c.finalizer), "%s: finalizers", c.policy)
				got, err := cms.Get(ctx, name, metav1.GetOptions{})
				Expect(err).NotTo(HaveOccurred(), "%s: the owner stays while finalizers remain", c.policy)
				Expect(got.DeletionTimestamp).NotTo(BeNil())
			}

			By("Background: the owner goes at once")
			owner, err := cms.Create(ctx, configMap("owner-background", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			dep := configMap("owner-background-dependent", nil)
			dep.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}}
			_, err = cms.Create(ctx, dep, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cms.Delete(ctx, owner.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})).To(Succeed())
			_, err = cms.Get(ctx, owner.Name, metav1.GetOptions{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Background deletes the owner at once: %v", err)

			err = cms.Delete(ctx, "owner-orphan-dependent", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletionPropagation("Sideways"))})
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "an unknown propagationPolicy: want 422 Invalid, got %v", err)
		}, SpecTimeout(specTimeout))

		It("deletes a collection by label selector and leaves the rest", harness.Labels(CapDelete), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			for i, group := range []string{"x", "x", "x", "y", "y"} {
				_, err := cms.Create(ctx, configMap(group+string(rune('0'+i)), map[string]string{"group": group}), metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "group=x"})).To(Succeed())
			l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "group"})
			Expect(err).NotTo(HaveOccurred())
			var names []string
			for _, cm := range l.Items {
				names = append(names, cm.Name)
			}
			Expect(names).To(ConsistOf("y3", "y4"))
		}, SpecTimeout(specTimeout))
	})
}

// rawStatus sends body with method to path under f's namespace's
// configmaps through the REST client and returns the error's Status.
func rawStatus(ctx context.Context, f *fixture, method, name, body string) metav1.Status {
	GinkgoHelper()
	req := f.client.CoreV1().RESTClient().Verb(method).Namespace(f.ns).Resource("configmaps").
		SetHeader("Content-Type", "application/json").Body([]byte(body))
	if name != "" {
		req = req.Name(name)
	}
	err := req.Do(ctx).Error()
	Expect(err).To(HaveOccurred(), "%s %s %q must fail", method, name, body)
	var st apierrors.APIStatus
	Expect(errors.As(err, &st)).To(BeTrue(), "the error carries a Status: %v", err)
	return st.Status()
}

func describeBadInput(t Target) {
	Describe("API server validation", func() {
		f := newFixture(t)

		It("rejects malformed bodies, mismatched apiVersions, names and namespaces, oversized bodies, unknown resources and bad selectors with their status codes, and stores nothing", harness.Labels(CapValidation), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			const mine = "conformance=badinput"
			existing, err := cms.Create(ctx, configMap("existing", map[string]string{"conformance": "badinput"}), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			body := func(apiVersion, name, ns, value string) string {
				meta := `"name":"` + name + `"`
				if ns != "" {
					meta += `,"namespace":"` + ns + `"`
				}
				return `{"apiVersion":"` + apiVersion + `","kind":"ConfigMap","metadata":{` + meta + `,"labels":{"conformance":"badinput"}},"data":{"k":"` + value + `"}}`
			}
			for _, c := range []struct {
				what, method, name, body string
				code                     int32
				reason                   metav1.StatusReason
			}{
				{"malformed JSON", "POST", "", `{"apiVersion":"v1","kind":`, 400, metav1.StatusReasonBadRequest},
				{"another apiVersion", "POST", "", body("apps/v1", "a", "", "x"), 400, metav1.StatusReasonBadRequest},
				{"another namespace", "POST", "", body("v1", "a", f.ns+"-other", "x"), 400, metav1.StatusReasonBadRequest},
				{"an invalid name", "POST", "", body("v1", "Not_Valid", "", "x"), 422, metav1.StatusReasonInvalid},
				{"an oversized body", "POST", "", body("v1", "big", "", strings.Repeat("x", 4<<20)), 413, metav1.StatusReasonRequestEntityTooLarge},
				{"malformed JSON update", "PUT", "existing", `{"apiVersion":`, 400, metav1.StatusReasonBadRequest},
				{"an update naming another object", "PUT", "existing", body("v1", "other", "", "x"), 400, metav1.StatusReasonBadRequest},
				{"an update naming another namespace", "PUT", "existing", body("v1", "existing", f.ns+"-other", "x"), 400, metav1.StatusReasonBadRequest},
			} {
				st := rawStatus(ctx, f, c.method, c.name, c.body)
				Expect(st.Code).To(Equal(c.code), "%s: %s", c.what, st.Message)
				Expect(st.Reason).To(Equal(c.reason), "%s: %s", c.what, st.Message)
			}

			By("unknown resources and bad selectors")
			err = f.client.CoreV1().RESTClient().Get().Namespace(f.ns).Resource("frobnicators").Do(ctx).Error()
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an unknown resource: want 404 NotFound, got %v", err)
			_, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name"})
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "a malformed field selector: want 400 BadRequest, got %v", err)
			_, err = cms.List(ctx, metav1.ListOptions{LabelSelector: "a in (("})
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "a malformed label selector: want 400 BadRequest, got %v", err)

			By("the store is untouched")
			l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: mine})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).To(HaveLen(1), "nothing was created")
			Expect(l.Items[0].ResourceVersion).To(Equal(existing.ResourceVersion), "nothing was updated")
			Expect(l.Items[0].Data).To(Equal(existing.Data))
		}, SpecTimeout(specTimeout))
	})
}
