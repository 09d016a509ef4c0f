package node

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// Register declares every spec of the suite against t. Call it once, before
// Ginkgo's RunSpecs; it declares containers and runs nothing itself.
func Register(t Target) {
	describeRegistration(t)
	describeHeartbeat(t)
	describeLifecycle(t)
	describeRestartPolicy(t)
	describeCrashLoopBackOff(t)
	describeInitContainers(t)
	describeProbes(t)
	describeStatus(t)
}

// describe declares a container for capability c of target t whose specs
// get a fixture.
func describe(t Target, c spec.Capability, text string, body func(f *fixture), extra ...string) {
	Describe("Node "+text, harness.Labels(c, extra...), func() {
		f := newFixture(t, c)
		body(f)
	})
}

// Upstream's node lease: renewed every 10 s, valid for 40 s.
const (
	leaseNamespace      = "kube-node-lease"
	leaseRenewInterval  = 10 * time.Second
	leaseDurationBound  = 40
	heartbeatObservance = 25 * time.Second
)

func describeRegistration(t Target) {
	describe(t, CapRegistration, "registration", func(f *fixture) {
		It("registers the Node Ready with the well-known labels and a capacity", func(ctx SpecContext) {
			var n *corev1.Node
			Eventually(ctx, func(g Gomega) {
				var err error
				n, err = f.client.CoreV1().Nodes().Get(ctx, f.t.NodeName, metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred(), "the Node %s", f.t.NodeName)
				g.Expect(nodeReady(n)).To(Equal(corev1.ConditionTrue), "the Node's Ready condition")
			}).WithTimeout(startTimeout).WithPolling(poll).Should(Succeed())
			Expect(n.Labels).To(HaveKeyWithValue(corev1.LabelHostname, Not(BeEmpty())), "label %s", corev1.LabelHostname)
			Expect(n.Labels).To(HaveKeyWithValue(corev1.LabelOSStable, "linux"), "label %s", corev1.LabelOSStable)
			Expect(n.Labels).To(HaveKeyWithValue(corev1.LabelArchStable, Not(BeEmpty())), "label %s", corev1.LabelArchStable)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
				q, ok := n.Status.Capacity[r]
				Expect(ok && q.Sign() > 0).To(BeTrue(), "capacity %s: %v", r, n.Status.Capacity)
				a, ok := n.Status.Allocatable[r]
				Expect(ok && a.Sign() > 0 && a.Cmp(q) <= 0).To(BeTrue(), "allocatable %s within capacity: %v", r, n.Status.Allocatable)
			}
			Expect(n.Status.NodeInfo.KubeletVersion).NotTo(BeEmpty(), "nodeInfo.kubeletVersion")
			Expect(n.Status.NodeInfo.ContainerRuntimeVersion).NotTo(BeEmpty(), "nodeInfo.containerRuntimeVersion")
		}, SpecTimeout(specTimeout))
	})
}

// nodeReady returns the status of n's Ready condition ("" when missing).
func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func describeHeartbeat(t Target) {
	describe(t, CapHeartbeat, "heartbeat", func(f *fixture) {
		It("holds its Lease and renews it at least twice within 25 seconds", func(ctx SpecContext) {
			leases := f.client.CoordinationV1().Leases(leaseNamespace)
			var renewals []time.Time
			var last metav1.MicroTime
			deadline := time.Now().Add(heartbeatObservance)
			for time.Now().Before(deadline) && len(renewals) < 3 {
				l, err := leases.Get(ctx, f.t.NodeName, metav1.GetOptions{})
				if err == nil {
					Expect(l.Spec.HolderIdentity).To(HaveValue(Equal(f.t.NodeName)), "the Lease's holder")
					Expect(l.Spec.LeaseDurationSeconds).To(HaveValue(BeNumerically(">=", leaseRenewInterval/time.Second)), "leaseDurationSeconds")
					Expect(l.Spec.LeaseDurationSeconds).To(HaveValue(BeNumerically("<=", leaseDurationBound)), "leaseDurationSeconds")
					if l.Spec.RenewTime != nil && !l.Spec.RenewTime.Equal(&last) {
						Expect(last.IsZero() || l.Spec.RenewTime.After(last.Time)).To(BeTrue(), "renewTime went back from %v to %v", last, l.Spec.RenewTime)
						last = *l.Spec.RenewTime
						renewals = append(renewals, time.Now())
					}
				} else if !apierrors.IsNotFound(err) {
					Expect(err).NotTo(HaveOccurred(), "reading the Lease")
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			// The first renewal seen is where observation starts; two more
			// are the advances.
			Expect(len(renewals)).To(BeNumerically(">=", 3), "renewTime of Lease %s/%s seen advancing %d times in %v, want 2",
				leaseNamespace, f.t.NodeName, max(len(renewals)-1, 0), heartbeatObservance)
		}, SpecTimeout(specTimeout))
	})
}

func describeLifecycle(t Target) {
	describe(t, CapLifecycle, "pod lifecycle", func(f *fixture) {
		It("runs a bound pod with a pod IP and removes it within its grace period once deleted", func(ctx SpecContext) {
			p := f.pod("web", corev1.RestartPolicyAlways, container("main", workload, nil, "pause"))
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
			f.create(ctx, p)
			got := f.waitPod(ctx, "web", "Running with a pod IP", startTimeout, func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != ""
			})
			Expect(got.Status.PodIPs).NotTo(BeEmpty(), "podIPs")
			Expect(got.Status.PodIPs[0].IP).To(Equal(got.Status.PodIP), "podIPs[0]")
			Expect(got.Status.HostIP).NotTo(BeEmpty(), "hostIP")
			Expect(got.Status.StartTime).NotTo(BeNil(), "startTime")

			start := time.Now()
			Expect(f.client.CoreV1().Pods(f.ns).Delete(ctx, "web", metav1.DeleteOptions{})).To(Succeed())
			// The grace period, plus what a kubelet needs to notice and
			// confirm the delete.
			bound := 10*time.Second + 5*time.Second
			Eventually(ctx, func() error {
				_, err := f.get(ctx, "web")
				return err
			}).WithTimeout(bound).WithPolling(poll).Should(Satisfy(apierrors.IsNotFound),
				"the deleted pod is still in the API %v after the delete", time.Since(start))
		}, SpecTimeout(specTimeout))
	})
}

func describeRestartPolicy(t Target) {
	describe(t, CapRestartPolicy, "restart policy", func(f *fixture) {
		It("fails a Never pod whose container exits 1 and never restarts it", func(ctx SpecContext) {
			f.create(ctx, f.pod("never", corev1.RestartPolicyNever, container("main", workload, nil, "exit", "--code", "1")))
			f.waitPod(ctx, "never", "Failed", startTimeout, phaseIs(corev1.PodFailed))
			Consistently(ctx, func(g Gomega) {
				p, err := f.get(ctx, "never")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodFailed))
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				g.Expect(cs).NotTo(BeNil(), "status of container main")
				g.Expect(cs.RestartCount).To(BeZero(), "restartCount of a Never container")
				g.Expect(cs.State.Terminated).NotTo(BeNil(), "state of container main: %+v", cs.State)
				g.Expect(cs.State.Terminated.ExitCode).To(Equal(int32(1)), "exit code")
			}).WithTimeout(settle).WithPolling(poll).Should(Succeed())
		}, SpecTimeout(specTimeout))

		It("completes an OnFailure pod whose container exits 0 without restarting it", func(ctx SpecContext) {
			f.create(ctx, f.pod("onfailure", corev1.RestartPolicyOnFailure, container("main", workload, nil, "exit", "--code", "0")))
			p := f.waitPod(ctx, "onfailure", "Succeeded", startTimeout, phaseIs(corev1.PodSucceeded))
			cs := containerStatus(p.Status.ContainerStatuses, "main")
			Expect(cs).NotTo(BeNil(), "status of container main")
			Expect(cs.RestartCount).To(BeZero(), "restartCount")
			Expect(cs.State.Terminated).NotTo(BeNil(), "state of container main: %+v", cs.State)
			Expect(cs.State.Terminated.ExitCode).To(BeZero(), "exit code")
		}, SpecTimeout(specTimeout))

		It("restarts an Always container that exits 0", func(ctx SpecContext) {
			f.create(ctx, f.pod("always", corev1.RestartPolicyAlways, container("main", workload, nil, "exit", "--code", "0")))
			p := f.waitPod(ctx, "always", "container main restarted", startTimeout, func(p *corev1.Pod) bool {
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				return cs != nil && cs.RestartCount >= 1
			})
			Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "an Always pod is never done")
		}, SpecTimeout(specTimeout))
	})
}

func describeCrashLoopBackOff(t Target) {
	describe(t, CapCrashLoopBackOff, "crash-loop back-off", func(f *fixture) {
		It("waits with reason CrashLoopBackOff between restarts, for longer each time", func(ctx SpecContext) {
			f.create(ctx, f.pod("crash", corev1.RestartPolicyAlways, container("main", workload, nil, "exit", "--code", "1")))
			// When each restartCount was first seen, and whether the
			// container was seen waiting in CrashLoopBackOff.
			seen := map[int32]time.Time{}
			backoff := false
			Eventually(ctx, func(g Gomega) {
				p, err := f.get(ctx, "crash")
				g.Expect(err).NotTo(HaveOccurred())
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				g.Expect(cs).NotTo(BeNil(), "status of container main")
				if _, ok := seen[cs.RestartCount]; !ok {
					seen[cs.RestartCount] = time.Now()
				}
				if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
					backoff = true
				}
				g.Expect(cs.RestartCount).To(BeNumerically(">=", 3), "restarts so far: %s", statusLine(p))
				g.Expect(backoff).To(BeTrue(), "container main never seen waiting in CrashLoopBackOff")
			}).WithTimeout(specTimeout - 10*time.Second).WithPolling(poll).Should(Succeed())
			// The first restart may come at once; after that each wait
			// is longer than the one before (upstream doubles it).
			t1, ok1 := seen[1]
			t2, ok2 := seen[2]
			t3, ok3 := seen[3]
			Expect(ok1 && ok2 && ok3).To(BeTrue(), "restart counts seen: %v (each restart must show in the status)", keys(seen))
			d1, d2 := t2.Sub(t1), t3.Sub(t2)
			Expect(d2).To(BeNumerically(">", d1+d1/4), "interval before the 3rd restart (%v) against the one before the 2nd (%v)", d2, d1)
		}, SpecTimeout(specTimeout))
	})
}

func keys(m map[int32]time.Time) []int32 {
	var out []int32
	for k := range m {
		out = append(out, k)
	}
	return out
}

func describeInitContainers(t Target) {
	describe(t, CapInitContainers, "init containers", func(f *fixture) {
		It("runs init containers one after the other to completion before the app containers", func(ctx SpecContext) {
			p := f.pod("init", corev1.RestartPolicyNever,
				sh("main", `[ "$(cat /w/order)" = "$(printf 'one\ntwo')" ]`))
			p.Spec.InitContainers = []corev1.Container{
				sh("one", `sleep 1; echo one >> /w/order`),
				sh("two", `grep -qx one /w/order && echo two >> /w/order`),
			}
			f.create(ctx, withScratch(p))
			got := f.waitPod(ctx, "init", "Succeeded (main checks that one ran, then two)", startTimeout, func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			})
			Expect(got.Status.Phase).To(Equal(corev1.PodSucceeded), "status: %s", statusLine(got))
			for _, n := range []string{"one", "two"} {
				cs := containerStatus(got.Status.InitContainerStatuses, n)
				Expect(cs).NotTo(BeNil(), "status of init container %s", n)
				Expect(cs.State.Terminated).NotTo(BeNil(), "state of init container %s: %+v", n, cs.State)
				Expect(cs.State.Terminated.ExitCode).To(BeZero(), "exit code of init container %s", n)
				Expect(cs.State.Terminated.Reason).To(Equal("Completed"), "reason of init container %s", n)
			}
			init := podCondition(got, corev1.PodInitialized)
			Expect(init).NotTo(BeNil(), "condition Initialized")
			Expect(init.Status).To(Equal(corev1.ConditionTrue), "condition Initialized")
		}, SpecTimeout(specTimeout))

		It("fails a Never pod whose init container fails, without starting the app containers", func(ctx SpecContext) {
			p := f.pod("initfail", corev1.RestartPolicyNever, container("main", workload, nil, "pause"))
			p.Spec.InitContainers = []corev1.Container{sh("bad", "exit 3"), sh("after", "true")}
			f.create(ctx, p)
			got := f.waitPod(ctx, "initfail", "Failed", startTimeout, phaseIs(corev1.PodFailed))
			bad := containerStatus(got.Status.InitContainerStatuses, "bad")
			Expect(bad).NotTo(BeNil(), "status of init container bad")
			Expect(bad.State.Terminated).NotTo(BeNil(), "state of init container bad: %+v", bad.State)
			Expect(bad.State.Terminated.ExitCode).To(Equal(int32(3)), "exit code of init container bad")
			Expect(bad.RestartCount).To(BeZero(), "restartCount of init container bad under Never")
			Consistently(ctx, func(g Gomega) {
				p, err := f.get(ctx, "initfail")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodFailed))
				if after := containerStatus(p.Status.InitContainerStatuses, "after"); after != nil {
					g.Expect(after.State.Running == nil && after.State.Terminated == nil).To(BeTrue(), "init container after ran: %+v", after.State)
				}
				if main := containerStatus(p.Status.ContainerStatuses, "main"); main != nil {
					g.Expect(main.State.Running == nil && main.State.Terminated == nil).To(BeTrue(), "app container main ran: %+v", main.State)
					g.Expect(main.Started).NotTo(HaveValue(BeTrue()), "app container main started")
				}
			}).WithTimeout(settle).WithPolling(poll).Should(Succeed())
		}, SpecTimeout(specTimeout))
	})
}

func describeProbes(t Target) {
	describe(t, CapProbes, "probes", func(f *fixture) {
		It("keeps a container whose readiness probe fails running and never Ready", func(ctx SpecContext) {
			c := container("main", busybox, []string{"sleep", "3600"})
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}},
				PeriodSeconds: 1, FailureThreshold: 1}
			f.create(ctx, f.pod("unready", corev1.RestartPolicyAlways, c))
			f.waitPod(ctx, "unready", "Running with a Ready condition", startTimeout, func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodRunning && podCondition(p, corev1.PodReady) != nil
			})
			Consistently(ctx, func(g Gomega) {
				p, err := f.get(ctx, "unready")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
				g.Expect(podCondition(p, corev1.PodReady).Status).To(Equal(corev1.ConditionFalse), "condition Ready")
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				g.Expect(cs).NotTo(BeNil(), "status of container main")
				g.Expect(cs.Ready).To(BeFalse(), "container main ready")
				g.Expect(cs.State.Running).NotTo(BeNil(), "container main running: %+v", cs.State)
				g.Expect(cs.RestartCount).To(BeZero(), "a readiness failure restarted the container")
			}).WithTimeout(settle).WithPolling(poll).Should(Succeed())
		}, SpecTimeout(specTimeout))

		It("restarts a container whose liveness probe fails", func(ctx SpecContext) {
			c := container("main", busybox, []string{"sleep", "3600"})
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}},
				PeriodSeconds: 1, FailureThreshold: 1}
			p := f.pod("unlive", corev1.RestartPolicyAlways, c)
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
			f.create(ctx, p)
			got := f.waitPod(ctx, "unlive", "container main restarted by its liveness probe", startTimeout, func(p *corev1.Pod) bool {
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				return cs != nil && cs.RestartCount >= 1
			})
			cs := containerStatus(got.Status.ContainerStatuses, "main")
			Expect(cs.LastTerminationState.Terminated).NotTo(BeNil(), "lastState of the restarted container: %+v", cs.LastTerminationState)
		}, SpecTimeout(specTimeout))
	})
}

func describeStatus(t Target) {
	describe(t, CapStatus, "container status", func(f *fixture) {
		It("reports containerID, image, imageID, started, ready and the last exit with its code and reason", func(ctx SpecContext) {
			// Exits 2 on its first run, then stays up (emptyDir survives
			// container restarts).
			p := f.pod("status", corev1.RestartPolicyOnFailure,
				sh("main", `if [ -e /w/ran ]; then exec sleep 3600; fi; touch /w/ran; exit 2`))
			f.create(ctx, withScratch(p))
			got := f.waitPod(ctx, "status", "restarted once, running and Ready", startTimeout, func(p *corev1.Pod) bool {
				cs := containerStatus(p.Status.ContainerStatuses, "main")
				return cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil && isReady(p)
			})
			cs := containerStatus(got.Status.ContainerStatuses, "main")
			Expect(cs.RestartCount).To(Equal(int32(1)), "restartCount")
			Expect(cs.Ready).To(BeTrue(), "ready")
			Expect(cs.Started).To(HaveValue(BeTrue()), "started")
			Expect(cs.Image).NotTo(BeEmpty(), "image")
			Expect(cs.ImageID).NotTo(BeEmpty(), "imageID")
			scheme, id, ok := strings.Cut(cs.ContainerID, "://")
			Expect(ok && scheme != "" && id != "").To(BeTrue(), "containerID %q: want <runtime>://<id>", cs.ContainerID)
			Expect(cs.State.Running.StartedAt.IsZero()).To(BeFalse(), "state.running.startedAt")
			last := cs.LastTerminationState.Terminated
			Expect(last).NotTo(BeNil(), "lastState.terminated: %+v", cs.LastTerminationState)
			Expect(last.ExitCode).To(Equal(int32(2)), "lastState exit code")
			Expect(last.Reason).To(Equal("Error"), "lastState reason")
			Expect(last.ContainerID).NotTo(BeEmpty(), "lastState containerID")
			Expect(last.ContainerID).NotTo(Equal(cs.ContainerID), "the restarted container has a new containerID")
			Expect(last.FinishedAt.IsZero()).To(BeFalse(), "lastState finishedAt")
		}, SpecTimeout(specTimeout))
	})
}
