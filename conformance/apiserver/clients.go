package apiserver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
)

// eventLog records an informer's notifications as "add:NAME",
// "update:NAME:VALUE" and "delete:NAME", in the order they arrive.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// handler returns event handlers that log ConfigMaps by name and the value
// of their data key "k".
func (l *eventLog) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { l.add("add:" + o.(*corev1.ConfigMap).Name) },
		UpdateFunc: func(old, o any) {
			if old.(*corev1.ConfigMap).ResourceVersion != o.(*corev1.ConfigMap).ResourceVersion {
				l.add("update:" + o.(*corev1.ConfigMap).Name + ":" + o.(*corev1.ConfigMap).Data["k"])
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			l.add("delete:" + o.(*corev1.ConfigMap).Name)
		},
	}
}

// namesAndVersions maps each ConfigMap's name to its resourceVersion.
func namesAndVersions(cms []*corev1.ConfigMap) map[string]string {
	out := map[string]string{}
	for _, cm := range cms {
		out[cm.Name] = cm.ResourceVersion
	}
	return out
}

func describeInformers(t Target) {
	Describe("API server informers", func() {
		f := newFixture(t)
		// Objects of a spec carry this label, so that objects other
		// controllers add to the namespace (kube-root-ca.crt) stay out.
		const sel = "conformance=informer"
		mine := map[string]string{"conformance": "informer"}

		It("sync a SharedInformerFactory informer that sees adds, updates and deletes in order and whose lister matches a fresh list", harness.Labels(CapInformers), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			_, err := cms.Create(ctx, configMap("before", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			factory := informers.NewSharedInformerFactoryWithOptions(f.client, 0, informers.WithNamespace(f.ns),
				informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
			inf := factory.Core().V1().ConfigMaps()
			var log eventLog
			_, err = inf.Informer().AddEventHandler(log.handler())
			Expect(err).NotTo(HaveOccurred())
			stop := make(chan struct{})
			factory.Start(stop)
			defer func() { close(stop); factory.Shutdown() }()
			Expect(cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced)).To(BeTrue(), "informer sync")

			a, err := cms.Create(ctx, configMap("a", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			a.Data["k"] = "1"
			a, err = cms.Update(ctx, a, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			a.Data["k"] = "2"
			_, err = cms.Update(ctx, a, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			_, err = cms.Create(ctx, configMap("b", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(cms.Delete(ctx, "a", metav1.DeleteOptions{})).To(Succeed())
			_, err = cms.Create(ctx, configMap("unlabelled", nil), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			_, err = cms.Create(ctx, configMap("c", mine), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())

			want := []string{"add:before", "add:a", "update:a:1", "update:a:2", "add:b", "delete:a", "add:c"}
			Eventually(log.get).WithContext(ctx).WithTimeout(30*time.Second).Should(HaveLen(len(want)), "the informer's notifications")
			Expect(log.get()).To(Equal(want), "notifications in the order of the writes, nothing outside the selector")

			fresh, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel})
			Expect(err).NotTo(HaveOccurred())
			wantState := map[string]string{}
			for _, cm := range fresh.Items {
				wantState[cm.Name] = cm.ResourceVersion
			}
			Expect(wantState).To(HaveLen(3))
			Eventually(func() (map[string]string, error) {
				l, err := inf.Lister().ConfigMaps(f.ns).List(labels.Everything())
				return namesAndVersions(l), err
			}).WithContext(ctx).WithTimeout(30*time.Second).Should(Equal(wantState), "the lister holds what a fresh LIST returns")
		}, SpecTimeout(2*specTimeout))

		It("keep an informer working, losing no event, across watches that end (timeoutSeconds)", harness.Labels(CapInformers, harness.LabelSlow), func(ctx SpecContext) {
			cms := f.client.CoreV1().ConfigMaps(f.ns)
			// Every watch of this informer ends after a second: the
			// reflector must resume (or relist) each time.
			factory := informers.NewSharedInformerFactoryWithOptions(f.client, 0, informers.WithNamespace(f.ns),
				informers.WithTweakListOptions(func(o *metav1.ListOptions) {
					o.LabelSelector = sel
					o.TimeoutSeconds = ptr.To[int64](1)
				}))
			inf := factory.Core().V1().ConfigMaps()
			var log eventLog
			_, err := inf.Informer().AddEventHandler(log.handler())
			Expect(err).NotTo(HaveOccurred())
			stop := make(chan struct{})
			factory.Start(stop)
			defer func() { close(stop); factory.Shutdown() }()
			Expect(cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced)).To(BeTrue(), "informer sync")

			// Writes spread over several watch lifetimes.
			const n = 8
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("c%d", i)
				cm, err := cms.Create(ctx, configMap(name, mine), metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
				cm.Data["k"] = "updated"
				_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
				Expect(err).NotTo(HaveOccurred())
				if i%2 == 1 {
					Expect(cms.Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
				}
				time.Sleep(500 * time.Millisecond)
			}
			fresh, err := cms.List(ctx, metav1.ListOptions{LabelSelector: sel})
			Expect(err).NotTo(HaveOccurred())
			wantState := map[string]string{}
			for _, cm := range fresh.Items {
				wantState[cm.Name] = cm.ResourceVersion
			}
			Expect(wantState).To(HaveLen(n / 2))
			Eventually(func() (map[string]string, error) {
				l, err := inf.Lister().ConfigMaps(f.ns).List(labels.Everything())
				return namesAndVersions(l), err
			}).WithContext(ctx).WithTimeout(30*time.Second).Should(Equal(wantState), "the lister holds what a fresh LIST returns")

			// Each object's notifications: added once, its update seen
			// (as an update, or folded into the add by a relist), and
			// deleted once if it was deleted.
			perObject := map[string][]string{}
			for _, e := range log.get() {
				parts := strings.SplitN(e, ":", 3)
				perObject[parts[1]] = append(perObject[parts[1]], parts[0])
			}
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("c%d", i)
				evs := perObject[name]
				Expect(evs).NotTo(BeEmpty(), "%s: no notification", name)
				Expect(evs[0]).To(Equal("add"), "%s: %v", name, evs)
				Expect(countOf(evs, "add")).To(Equal(1), "%s added once: %v", name, evs)
				if i%2 == 1 {
					Expect(evs[len(evs)-1]).To(Equal("delete"), "%s: %v", name, evs)
					Expect(countOf(evs, "delete")).To(Equal(1), "%s deleted once: %v", name, evs)
				} else {
					Expect(countOf(evs, "delete")).To(BeZero(), "%s never deleted: %v", name, evs)
					cm, err := inf.Lister().ConfigMaps(f.ns).Get(name)
					Expect(err).NotTo(HaveOccurred())
					Expect(cm.Data["k"]).To(Equal("updated"))
				}
			}
		}, SpecTimeout(2*specTimeout))
	})
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// candidate is one participant of a leader election.
type candidate struct {
	id      string
	cancel  context.CancelFunc
	done    chan struct{} // closed when RunOrDie returned
	started chan struct{} // closed on OnStartedLeading
	mu      sync.Mutex
	leading bool
}

func (c *candidate) isLeading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading
}

// leaseDuration is the candidates' LeaseDuration: long enough that a leader
// on a busy machine keeps renewing in time.
const leaseDuration = 6 * time.Second

// runCandidate starts client-go leader election for id on the Lease name
// in f's namespace. release is ReleaseOnCancel.
func runCandidate(ctx context.Context, f *fixture, name, id string, release bool) *candidate {
	cctx, cancel := context.WithCancel(ctx)
	c := &candidate{id: id, cancel: cancel, done: make(chan struct{}), started: make(chan struct{})}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Client:     f.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: 4 * time.Second, RetryPeriod: 250 * time.Millisecond,
		ReleaseOnCancel: release, Name: id,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				c.mu.Lock()
				c.leading = true
				c.mu.Unlock()
				close(c.started)
			},
			OnStoppedLeading: func() {
				c.mu.Lock()
				c.leading = false
				c.mu.Unlock()
			},
		},
	})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		defer close(c.done)
		le.Run(cctx)
	}()
	DeferCleanup(func() { cancel(); <-c.done })
	return c
}

func holder(ctx context.Context, f *fixture, name string) (string, error) {
	l, err := f.client.CoordinationV1().Leases(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), nil
}

// electedOne waits until exactly one of cs leads and returns it and the
// others.
func electedOne(ctx context.Context, cs ...*candidate) (*candidate, []*candidate) {
	GinkgoHelper()
	var leader *candidate
	Eventually(func() int {
		n := 0
		for _, c := range cs {
			if c.isLeading() {
				n++
				leader = c
			}
		}
		return n
	}).WithContext(ctx).WithTimeout(30*time.Second).Should(Equal(1), "one candidate leads")
	var others []*candidate
	for _, c := range cs {
		if c != leader {
			others = append(others, c)
		}
	}
	return leader, others
}

func describeLeaderElection(t Target) {
	Describe("API server leader election", func() {
		f := newFixture(t)

		It("lets client-go leader election acquire a Lease", harness.Labels(CapLeaderElection), func(ctx SpecContext) {
			c := runCandidate(ctx, f, "leader", "conformance", false)
			Eventually(c.started).WithContext(ctx).WithTimeout(30*time.Second).Should(BeClosed(), "becoming leader")
			Expect(holder(ctx, f, "leader")).To(Equal("conformance"))
		}, SpecTimeout(specTimeout))

		It("elects exactly one of two candidates, and the other takes over when the leader releases the Lease", harness.Labels(CapLeaderElection, harness.LabelSlow), func(ctx SpecContext) {
			a := runCandidate(ctx, f, "pair", "a", true)
			b := runCandidate(ctx, f, "pair", "b", true)
			leader, others := electedOne(ctx, a, b)
			follower := others[0]
			Expect(holder(ctx, f, "pair")).To(Equal(leader.id))
			Consistently(follower.isLeading).WithContext(ctx).WithTimeout(leaseDuration+time.Second).WithPolling(100*time.Millisecond).
				Should(BeFalse(), "the follower stays a follower while the leader renews (longer than a lease duration)")
			Expect(holder(ctx, f, "pair")).To(Equal(leader.id), "the leader still holds the Lease")
			l, err := f.client.CoordinationV1().Leases(f.ns).Get(ctx, "pair", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			transitions := ptr.Deref(l.Spec.LeaseTransitions, 0)

			By("cancelling the leader, which releases the Lease (ReleaseOnCancel)")
			leader.cancel()
			Eventually(leader.done).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeClosed())
			Eventually(follower.started).WithContext(ctx).WithTimeout(30*time.Second).Should(BeClosed(), "the follower takes over")
			Expect(leader.isLeading()).To(BeFalse())
			Expect(holder(ctx, f, "pair")).To(Equal(follower.id))
			l, err = f.client.CoordinationV1().Leases(f.ns).Get(ctx, "pair", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(ptr.Deref(l.Spec.LeaseTransitions, 0)).To(BeNumerically(">", transitions), "leaseTransitions counts the handover")
		}, SpecTimeout(2*specTimeout))

		It("lets another candidate take over when the leader stops renewing", harness.Labels(CapLeaderElection, harness.LabelSlow), func(ctx SpecContext) {
			a := runCandidate(ctx, f, "expiry", "a", false)
			b := runCandidate(ctx, f, "expiry", "b", false)
			leader, others := electedOne(ctx, a, b)
			follower := others[0]

			By("stopping the leader without releasing the Lease")
			leader.cancel()
			Eventually(leader.done).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeClosed())
			Eventually(follower.started).WithContext(ctx).WithTimeout(30*time.Second).Should(BeClosed(), "the follower takes over once the Lease expires")
			Expect(holder(ctx, f, "expiry")).To(Equal(follower.id))
		}, SpecTimeout(2*specTimeout))
	})
}

func describeDynamic(t Target) {
	Describe("API server dynamic client", func() {
		f := newFixture(t)

		It("creates, gets, updates, lists, watches and deletes unstructured objects", harness.Labels(CapDynamic), func(ctx SpecContext) {
			gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
			res := f.dynamic.Resource(gvr).Namespace(f.ns)
			l, err := res.List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(l.Items).To(BeEmpty())
			w, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: l.GetResourceVersion()})
			Expect(err).NotTo(HaveOccurred())
			defer w.Stop()

			deployment := func(name, tier string) *unstructured.Unstructured {
				return &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "apps/v1", "kind": "Deployment",
					"metadata": map[string]any{"name": name, "labels": map[string]any{"tier": tier}},
					"spec": map[string]any{
						"replicas": int64(1),
						"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
						"template": map[string]any{
							"metadata": map[string]any{"labels": map[string]any{"app": name}},
							"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.k8s.io/pause:3.10"}}},
						},
					},
				}}
			}
			created, err := res.Create(ctx, deployment("front", "web"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(created.GetUID()).NotTo(BeEmpty())
			Expect(created.GetKind()).To(Equal("Deployment"))
			Expect(created.GetGeneration()).To(Equal(int64(1)))
			_, err = res.Create(ctx, deployment("back", "db"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())

			got, err := res.Get(ctx, "front", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(unstructured.SetNestedField(got.Object, int64(3), "spec", "replicas")).To(Succeed())
			updated, err := res.Update(ctx, got, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			replicas, _, _ := unstructured.NestedInt64(updated.Object, "spec", "replicas")
			Expect(replicas).To(Equal(int64(3)))
			Expect(updated.GetGeneration()).To(Equal(int64(2)), "a spec change bumps the generation")

			sel, err := res.List(ctx, metav1.ListOptions{LabelSelector: "tier=web"})
			Expect(err).NotTo(HaveOccurred())
			Expect(sel.Items).To(HaveLen(1))
			Expect(sel.Items[0].GetName()).To(Equal("front"))
			Expect(sel.Items[0].GetKind()).To(Equal("Deployment"), "list items carry their kind")

			Expect(res.Delete(ctx, "front", metav1.DeleteOptions{})).To(Succeed())
			_, err = res.Get(ctx, "front", metav1.GetOptions{})
			Expect(err).To(HaveOccurred())

			// Controllers of a real cluster may add status updates: only
			// the order of what this spec wrote is checked.
			perObject := map[string][]string{}
			for len(perObject["front"]) == 0 || perObject["front"][len(perObject["front"])-1] != "DELETED" {
				ev := nextEvent(ctx, w)
				if ev.Type == watch.Bookmark {
					continue
				}
				u, ok := ev.Object.(*unstructured.Unstructured)
				Expect(ok).To(BeTrue(), "a dynamic watch delivers unstructured objects, got %T", ev.Object)
				Expect(u.GetKind()).To(Equal("Deployment"))
				entry := string(ev.Type)
				if r, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found && ev.Type == watch.Modified {
					entry = fmt.Sprintf("MODIFIED replicas=%d", r)
				}
				perObject[u.GetName()] = append(perObject[u.GetName()], entry)
			}
			front := perObject["front"]
			Expect(front[0]).To(Equal("ADDED"), "front: %v", front)
			Expect(front).To(ContainElement("MODIFIED replicas=3"), "front: %v", front)
			Expect(front[len(front)-1]).To(Equal("DELETED"))
			Expect(perObject["back"]).NotTo(BeEmpty(), "back: no event")
			Expect(perObject["back"][0]).To(Equal("ADDED"))
		}, SpecTimeout(specTimeout))
	})
}

// podNames returns the sorted names of pods.
func podNames(pods []corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}
