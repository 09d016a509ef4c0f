package controllers_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
	"github.com/kubelab/kubelab/reference/controllers/deployment"
	"github.com/kubelab/kubelab/reference/controllers/replicaset"
	"github.com/kubelab/kubelab/spec/spectest"
)

// kubelet acts as the kubelet of every pod in ns: a pod without a Ready
// condition is marked Running and Ready through the status subresource.
// It stops with the test.
func kubelet(t *testing.T, cs kubernetes.Interface, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for i := range list.Items {
				markReady(ctx, cs, &list.Items[i])
			}
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			if err != nil {
				continue
			}
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
					markReady(ctx, cs, p)
				}
			}
		}
	}()
}

func hasReadyCondition(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return true
		}
	}
	return false
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func markReady(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) {
	if hasReadyCondition(p) || p.DeletionTimestamp != nil {
		return
	}
	c := p.DeepCopy()
	now := metav1.Now()
	c.Status.Phase = corev1.PodRunning
	c.Status.Conditions = append(c.Status.Conditions,
		corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now})
	// A conflict means a newer version is on its way through the watch.
	_, _ = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
}

// podMonitor watches the pods of ns and checks, at every observed state,
// that there are never more than maxPods pods and — once minAvailable
// ready pods were seen — never fewer than minAvailable ready ones.
type podMonitor struct {
	mu         sync.Mutex
	pods       map[types.UID]*corev1.Pod
	violations []string
	armed      bool
	maxSeen    int
	stop       func()
}

func watchPods(t *testing.T, cs kubernetes.Interface, ns string, maxPods, minAvailable int) *podMonitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &podMonitor{pods: map[types.UID]*corev1.Pod{}}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		m.pods[list.Items[i].UID] = &list.Items[i]
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	m.stop = func() { cancel(); <-done }
	t.Cleanup(m.stop)
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			m.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(m.pods, p.UID)
			} else {
				m.pods[p.UID] = p
			}
			ready := 0
			for _, q := range m.pods {
				if isReady(q) && q.DeletionTimestamp == nil {
					ready++
				}
			}
			m.maxSeen = max(m.maxSeen, len(m.pods))
			if len(m.pods) > maxPods {
				m.violations = append(m.violations, fmt.Sprintf("rv %s: %d pods > %d", p.ResourceVersion, len(m.pods), maxPods))
			}
			if ready >= minAvailable {
				m.armed = true
			} else if m.armed {
				m.violations = append(m.violations, fmt.Sprintf("rv %s: %d ready < %d", p.ResourceVersion, ready, minAvailable))
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *podMonitor) check(t *testing.T) {
	t.Helper()
	m.stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.violations) > 0 {
		t.Fatalf("invariant violated at %d observed states, first: %s", len(m.violations), m.violations[0])
	}
}

func newNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ownedRS(t *testing.T, cs kubernetes.Interface, ns string) []appsv1.ReplicaSet {
	t.Helper()
	l, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func getCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == typ {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// rolledOut is true when d's rollout is complete (what kubectl rollout
// status waits for) with every replica available.
func rolledOut(d *appsv1.Deployment) bool {
	n := *d.Spec.Replicas
	c := getCondition(d, appsv1.DeploymentProgressing)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == n && d.Status.Replicas == n &&
		d.Status.AvailableReplicas == n && c != nil && c.Reason == deployment.ReasonNewRSAvailable
}

func TestDeploymentRollout(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) { c.RootCA = api.CA.CertPEM })
	ctx := context.Background()
	const ns = "apps"
	newNamespace(t, cs, ns)
	kubelet(t, cs, ns)
	// 3 replicas, maxSurge 1, maxUnavailable 0: at most 4 pods, at least 3
	// available once the first rollout is done.
	mon := watchPods(t, cs, ns, 4, 3)

	d := spectest.MakeDeployment().Image("img:v1").Surge(intstr.FromInt32(1), intstr.FromInt32(0)).Obj()
	d.Namespace, d.UID, d.Generation = ns, "", 0
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first rollout", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d), nil
	})
	rss := ownedRS(t, cs, ns)
	if len(rss) != 1 || *rss[0].Spec.Replicas != 3 || rss[0].Status.AvailableReplicas != 3 ||
		rss[0].Annotations[deployment.RevisionAnnotation] != "1" || !strings.HasPrefix(rss[0].Name, "web-") ||
		rss[0].Labels[deployment.HashLabel] == "" || rss[0].Name != "web-"+rss[0].Labels[deployment.HashLabel] {
		t.Fatalf("replicasets after the first rollout: %+v", rss)
	}
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rss[0].UID || p.Labels[deployment.HashLabel] != rss[0].Labels[deployment.HashLabel] {
			t.Fatalf("pod %s not controlled by %s: %+v", p.Name, rss[0].Name, p.ObjectMeta)
		}
	}
	got, _ := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if c := getCondition(got, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != deployment.ReasonMinimumAvailable {
		t.Fatalf("Available condition %+v", c)
	}
	if got.Annotations[deployment.RevisionAnnotation] != "1" {
		t.Fatalf("deployment revision %q", got.Annotations[deployment.RevisionAnnotation])
	}

	eventually(t, "ScalingReplicaSet and SuccessfulCreate events", func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		scaled, created := false, 0
		for _, e := range l.Items {
			switch {
			case e.Reason == "ScalingReplicaSet" && e.InvolvedObject.Kind == "Deployment" && e.Source.Component == "deployment-controller" &&
				e.Message == "Scaled up replica set "+rss[0].Name+" from 0 to 3":
				scaled = true
			case e.Reason == "SuccessfulCreate" && e.InvolvedObject.Name == rss[0].Name && e.Source.Component == "replicaset-controller":
				created += int(e.Count)
			}
		}
		return scaled && created == 3, nil
	})

	// An image change rolls out within maxSurge/maxUnavailable.
	kubectl := newKubectl(t, api)
	kubectl(t, "-n", ns, "set", "image", "deployment/web", "c=img:v2")
	if out := kubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("kubectl rollout status: %s", out)
	}
	eventually(t, "second rollout", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d) && d.Annotations[deployment.RevisionAnnotation] == "2", nil
	})
	rss = ownedRS(t, cs, ns)
	if len(rss) != 2 {
		t.Fatalf("%d replicasets after the image change, want 2", len(rss))
	}
	for _, rs := range rss {
		want := int32(0)
		if rs.Spec.Template.Spec.Containers[0].Image == "img:v2" {
			want = 3
		}
		if *rs.Spec.Replicas != want {
			t.Fatalf("replicaset %s (%s) has %d replicas, want %d", rs.Name, rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, want)
		}
	}
	if out := kubectl(t, "-n", ns, "rollout", "history", "deployment/web"); !strings.Contains(out, "1 ") || !strings.Contains(out, "2 ") {
		t.Fatalf("kubectl rollout history:\n%s", out)
	}
	mon.check(t)

	// kubectl rollout undo brings img:v1 back as revision 3.
	kubectl(t, "-n", ns, "rollout", "undo", "deployment/web")
	eventually(t, "undo", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d) && d.Annotations[deployment.RevisionAnnotation] == "3" &&
			d.Spec.Template.Spec.Containers[0].Image == "img:v1", nil
	})
	if rss = ownedRS(t, cs, ns); len(rss) != 2 {
		t.Fatalf("%d replicasets after undo, want 2 (the old one reused)", len(rss))
	}
	mon = watchPods(t, cs, ns, 4, 3)

	// Paused, a template change rolls nothing out; resumed, it does.
	kubectl(t, "-n", ns, "rollout", "pause", "deployment/web")
	kubectl(t, "-n", ns, "set", "image", "deployment/web", "c=img:v3")
	eventually(t, "paused condition", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		c := getCondition(d, appsv1.DeploymentProgressing)
		return err == nil && d.Status.ObservedGeneration == d.Generation && c != nil && c.Reason == deployment.ReasonPaused, nil
	})
	if rss = ownedRS(t, cs, ns); len(rss) != 2 {
		t.Fatalf("%d replicasets while paused, want 2 (no rollout)", len(rss))
	}
	kubectl(t, "-n", ns, "rollout", "resume", "deployment/web")
	if out := kubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("kubectl rollout status after resume: %s", out)
	}
	eventually(t, "resumed rollout", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d) && d.Annotations[deployment.RevisionAnnotation] == "4", nil
	})
	// kubectl rollout restart changes the template (restartedAt): a new
	// ReplicaSet.
	kubectl(t, "-n", ns, "rollout", "restart", "deployment/web")
	if out := kubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("kubectl rollout status after restart: %s", out)
	}
	eventually(t, "restart rolled out", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d) && d.Annotations[deployment.RevisionAnnotation] == "5", nil
	})

	mon.check(t)

	// Scaling down deletes pods in upstream's order: not ready first, then
	// the lower pod-deletion-cost.
	pods, _ = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 3 {
		t.Fatalf("%d pods before scaling down, want 3", len(live))
	}
	if rss = ownedRS(t, cs, ns); len(rss) != 4 {
		t.Fatalf("%d replicasets after the restart, want 4", len(rss))
	}
	cheap, unready, keeper := live[0], live[1], live[2]
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, cheap.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+replicaset.PodDeletionCostAnnotation+`":"-10"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	u, _ := cs.CoreV1().Pods(ns).Get(ctx, unready.Name, metav1.GetOptions{})
	for i := range u.Status.Conditions {
		if u.Status.Conditions[i].Type == corev1.PodReady {
			u.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rsName := metav1.GetControllerOf(&keeper).Name
	eventually(t, "the replicaset sees the unready pod", func(ctx context.Context) (bool, error) {
		rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, rsName, metav1.GetOptions{})
		return err == nil && rs.Status.ReadyReplicas == 2, nil
	})
	kubectl(t, "-n", ns, "scale", "deployment/web", "--replicas=1")
	eventually(t, "scaled to 1", func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 1, nil
	})
	l, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if l.Items[0].Name != keeper.Name {
		t.Fatalf("survivor %s, want %s (deleted first: unready %s, then cost -10 %s)", l.Items[0].Name, keeper.Name, unready.Name, cheap.Name)
	}
}

// newKubectl returns a function running the installed kubectl as the
// cluster admin against api (skips the test without kubectl).
func newKubectl(t *testing.T, api *apiservertest.Server) func(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	kcfg := filepath.Join(t.TempDir(), "kubeconfig")
	if err := api.CA.WriteClientKubeconfig(kcfg, api.HTTP.URL, pki.AdminIdentity()); err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"--kubeconfig", kcfg}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
}

// TestDeploymentRecreate: old pods are all gone before any new pod exists.
func TestDeploymentRecreate(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) {
		c.Controllers = []string{"deployment", "replicaset"}
	})
	ctx := context.Background()
	const ns = "recreate"
	newNamespace(t, cs, ns)
	kubelet(t, cs, ns)
	d := spectest.MakeDeployment().Image("img:v1").Recreate().Obj()
	d.Namespace, d.UID, d.Generation = ns, "", 0
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first rollout", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d), nil
	})
	mixed := watchImages(t, cs, ns)
	kubectl := newKubectl(t, api)
	kubectl(t, "-n", ns, "set", "image", "deployment/web", "c=img:v2")
	eventually(t, "second rollout", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && rolledOut(d) && d.Annotations[deployment.RevisionAnnotation] == "2", nil
	})
	if n := mixed(); n > 0 {
		t.Fatalf("old and new pods coexisted at %d observed states", n)
	}
}

// watchImages watches ns's pods; the returned function stops the watch and
// says at how many observed states pods of different images coexisted.
func watchImages(t *testing.T, cs kubernetes.Interface, ns string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := map[types.UID]string{}
	for _, p := range list.Items {
		pods[p.UID] = p.Spec.Containers[0].Image
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	mixed := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(pods, p.UID)
			} else {
				pods[p.UID] = p.Spec.Containers[0].Image
			}
			images := map[string]bool{}
			for _, img := range pods {
				images[img] = true
			}
			if len(images) > 1 {
				mixed++
			}
		}
	}()
	stop := func() int { cancel(); <-done; return mixed }
	t.Cleanup(func() { stop() })
	return stop
}
