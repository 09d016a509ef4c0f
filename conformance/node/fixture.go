package node

import (
	"context"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/conformance/runtime"
	"github.com/kubelab/kubelab/spec"
)

// Test images the node's runtime must hold (conformance/runtime's).
const (
	busybox  = runtime.BusyboxImage
	workload = runtime.WorkloadImage
)

// Timing of the verdicts. They hold for upstream's defaults.
const (
	// specTimeout bounds every spec.
	specTimeout = 2 * time.Minute
	// startTimeout is how long a pod may take to reach a phase or state
	// that needs no back-off (images are present).
	startTimeout = 45 * time.Second
	// poll is how often the suite reads the pod it waits on.
	poll = 100 * time.Millisecond
	// settle is how long the suite watches a state that must not change.
	settle = 5 * time.Second
)

// fixture is what every spec gets: a client, a namespace and the node.
type fixture struct {
	t      Target
	client kubernetes.Interface
	ns     string
}

// newFixture sets up, before each spec, a client for t and a namespace,
// skips the spec when t does not claim capability c, and deletes the
// spec's pods and namespace after it.
func newFixture(t Target, c spec.Capability) *fixture {
	f := &fixture{t: t}
	BeforeEach(func(ctx SpecContext) {
		if t.Claims != nil {
			harness.Require(t.Claims, c)
		}
		cfg, err := t.Config(ctx)
		Expect(err).NotTo(HaveOccurred(), "API server of target %s", t.Name)
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = 100, 200
		f.client, err = kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		f.ns = "node-" + rand.String(8)
		Expect(harness.CreateNamespace(ctx, f.client, f.ns)).To(Succeed(), "creating the spec's namespace")
		DeferCleanup(f.cleanup)
	})
	return f
}

// cleanup deletes the spec's pods at once (the kubelet stops what runs)
// and its namespace.
func (f *fixture) cleanup(ctx context.Context) {
	zero := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	if err := f.client.CoreV1().Pods(f.ns).DeleteCollection(ctx, zero, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		GinkgoWriter.Printf("cleanup: deleting the pods of %s: %v\n", f.ns, err)
	}
	if err := harness.DeleteNamespace(ctx, f.client, f.ns); err != nil {
		GinkgoWriter.Printf("cleanup: %v\n", err)
	}
}

// container is a container of image with command (nil: the image's
// entrypoint) and args.
func container(name, image string, command []string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: image, Command: command, Args: args, ImagePullPolicy: corev1.PullIfNotPresent}
}

// sh is a busybox container running script with sh -c.
func sh(name, script string) corev1.Container {
	return container(name, busybox, []string{"sh", "-c", script})
}

// pod is a pod bound to the node under test with restart policy and
// containers, and a short grace period.
func (f *fixture) pod(name string, policy corev1.RestartPolicy, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: corev1.PodSpec{
			NodeName: f.t.NodeName, RestartPolicy: policy, Containers: containers,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
		},
	}
}

// withScratch gives every container and init container of p an emptyDir
// mounted at /w.
func withScratch(p *corev1.Pod) *corev1.Pod {
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "w", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	m := corev1.VolumeMount{Name: "w", MountPath: "/w"}
	for i := range p.Spec.InitContainers {
		p.Spec.InitContainers[i].VolumeMounts = append(p.Spec.InitContainers[i].VolumeMounts, m)
	}
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].VolumeMounts = append(p.Spec.Containers[i].VolumeMounts, m)
	}
	return p
}

func (f *fixture) create(ctx context.Context, p *corev1.Pod) {
	GinkgoHelper()
	_, err := f.client.CoreV1().Pods(f.ns).Create(ctx, p, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating pod %s", p.Name)
}

func (f *fixture) get(ctx context.Context, name string) (*corev1.Pod, error) {
	return f.client.CoreV1().Pods(f.ns).Get(ctx, name, metav1.GetOptions{})
}

// waitPod waits up to timeout for pod name to satisfy cond (described by
// what) and returns it.
func (f *fixture) waitPod(ctx context.Context, name, what string, timeout time.Duration, cond func(*corev1.Pod) bool) *corev1.Pod {
	GinkgoHelper()
	var last *corev1.Pod
	Eventually(ctx, func(g Gomega) {
		p, err := f.get(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		last = p
		g.Expect(cond(p)).To(BeTrue(), "pod %s: %s; status: %s", name, what, statusLine(p))
	}).WithTimeout(timeout).WithPolling(poll).Should(Succeed())
	return last
}

// phaseIs is the condition "the pod's phase is phase".
func phaseIs(phase corev1.PodPhase) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Status.Phase == phase }
}

// containerStatus returns the status of container name among statuses.
func containerStatus(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}

// podCondition returns the pod's condition of type t, or nil.
func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// isReady reports whether the pod's Ready condition is True.
func isReady(p *corev1.Pod) bool {
	c := podCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// statusLine is a one-line account of a pod's status for failure
// messages.
func statusLine(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	if p.Status.Reason != "" {
		s += " (" + p.Status.Reason + ")"
	}
	for _, group := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range group {
			s += "; " + c.Name + ": "
			switch {
			case c.State.Running != nil:
				s += "running"
			case c.State.Waiting != nil:
				s += "waiting " + c.State.Waiting.Reason
			case c.State.Terminated != nil:
				s += "terminated " + c.State.Terminated.Reason
			}
			s += " restarts=" + itoa(int(c.RestartCount))
			if c.Ready {
				s += " ready"
			}
		}
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }
