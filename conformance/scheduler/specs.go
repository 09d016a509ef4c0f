package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubelab/kubelab/conformance/harness"
	"github.com/kubelab/kubelab/spec"
)

// Register declares every spec of the suite against t. Call it once, before
// Ginkgo's RunSpecs; it declares containers and runs nothing itself.
func Register(t Target) {
	describeResources(t)
	describeNodeName(t)
	describeNodeSelector(t)
	describeNodeAffinity(t)
	describeNodeAffinityTerms(t)
	describeTaints(t)
	describeTolerations(t)
	describeUnschedulableNode(t)
	describeHostPorts(t)
	describeHostIPs(t)
	describeTopologySpread(t)
	describeSpreadAnyway(t)
	describePodAffinity(t)
	describePodAffinityZones(t)
	describePodAntiAffinity(t)
	describePodAntiAffinityZones(t)
	describePriority(t)
	describePreemption(t)
	describeRequeue(t)
	describePendingStatus(t)
	describeBurst(t)
	describeChurn(t)
}

// describe declares a container for capability c of target t whose specs
// get a fixture.
func describe(t Target, c spec.Capability, text string, body func(f *fixture), extra ...string) {
	Describe("Scheduler "+text, harness.Labels(c, extra...), func() {
		f := newFixture(t, c)
		body(f)
	})
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func describeResources(t Target) {
	describe(t, CapResources, "resources", func(f *fixture) {
		It("places pods up to the nodes' cpu and memory and leaves the rest pending", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			f.createNode(ctx, "b", res("1", "1Gi", ""))
			for _, n := range names("p", 6) {
				f.createPod(ctx, n, res("400m", "300Mi", ""))
			}
			f.waitBoundCount(ctx, 4)
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("never overcommits memory when cpu is plentiful", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("16", "1Gi", ""))
			for _, n := range names("p", 3) {
				f.createPod(ctx, n, res("100m", "400Mi", ""))
			}
			f.waitBoundCount(ctx, 2)
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts the pods allocatable of a node", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("16", "16Gi", "3"))
			for _, n := range names("p", 5) {
				f.createPod(ctx, n, res("10m", "10Mi", ""))
			}
			f.waitBoundCount(ctx, 3)
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts extended resources", func(ctx SpecContext) {
			gpu := corev1.ResourceName("example.com/gpu")
			f.createNode(ctx, "a", res("16", "16Gi", ""), withAllocatable(gpu, "2"))
			f.createNode(ctx, "b", res("16", "16Gi", ""))
			req := res("100m", "10Mi", "")
			req[gpu] = *resourceQuantity("1")
			for _, n := range names("p", 3) {
				f.createPod(ctx, n, req)
			}
			pods := f.waitBoundCount(ctx, 2)
			for _, p := range pods {
				if p.Spec.NodeName != "" {
					Expect(p.Spec.NodeName).To(Equal(f.nodeName("a")), "pod %s needs a gpu", p.Name)
				}
			}
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts init containers: a pod needs the largest of its init containers' requests", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "4Gi", ""))
			f.createPod(ctx, "big-init", res("100m", "10Mi", ""), withInit(res("700m", "10Mi", "")))
			f.waitBound(ctx, "big-init")
			f.createPod(ctx, "second", res("400m", "10Mi", ""))
			f.waitUnschedulable(ctx, "second")
			f.expectStaysPending(ctx, "second")
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts the incoming pod's init containers as max(sum(app, sidecars), max(init)) against its node", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1500m", "4Gi", ""))
			// Needs 1000m, since init containers run one at a time (their
			// sum with the app's, 2100m, would not fit); once bound, it
			// also shows that the scheduler sees the node before the pods
			// that must stay pending are created.
			f.createPod(ctx, "init-fits", res("300m", "10Mi", ""), withInit(res("1000m", "10Mi", "")), withInit(res("800m", "10Mi", "")))
			f.waitBound(ctx, "init-fits")
			// 500m is left. Each pod below needs more (600m) only because
			// of one clause of the rule: its init container, or its
			// sidecar beside its app container.
			f.createPod(ctx, "init-too-big", res("100m", "10Mi", ""), withInit(res("600m", "10Mi", "")))
			f.createPod(ctx, "sidecar-adds", res("300m", "10Mi", ""), withSidecar(res("300m", "10Mi", "")))
			f.waitUnschedulable(ctx, "init-too-big", "sidecar-adds")
			f.expectStaysPending(ctx, "init-too-big", "sidecar-adds")
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts the incoming pod's overhead against its node", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("2", "4Gi", ""))
			overhead := res("500m", "10Mi", "")
			opt := f.overheadOpt(ctx, overhead)
			f.createPod(ctx, "fits", res("400m", "10Mi", ""), opt)
			f.waitBound(ctx, "fits")
			// 1100m is left: 700m fits it, 700m with its 500m overhead does not.
			f.createPod(ctx, "too-big", res("700m", "10Mi", ""), opt)
			f.waitUnschedulable(ctx, "too-big")
			f.expectStaysPending(ctx, "too-big")
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("counts pod overhead", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "4Gi", ""))
			overhead := res("500m", "10Mi", "")
			opt := f.overheadOpt(ctx, overhead)
			f.createPod(ctx, "with-overhead", res("300m", "10Mi", ""), opt)
			f.waitBound(ctx, "with-overhead")
			f.createPod(ctx, "second", res("400m", "10Mi", ""))
			f.waitUnschedulable(ctx, "second")
			f.expectStaysPending(ctx, "second")
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))
	})
}

// overheadOpt returns a pod option that gives the pod overhead: through a
// RuntimeClass with that overhead (what RuntimeClass admission requires)
// when the server serves node.k8s.io, else set directly.
func (f *fixture) overheadOpt(ctx context.Context, overhead corev1.ResourceList) podOpt {
	GinkgoHelper()
	rc, err := f.createRuntimeClass(ctx, overhead)
	if err != nil {
		return func(p *corev1.Pod) { p.Spec.Overhead = overhead }
	}
	return func(p *corev1.Pod) {
		p.Spec.RuntimeClassName = ptr.To(rc)
		p.Spec.Overhead = overhead
	}
}

func describeNodeName(t Target) {
	describe(t, CapNodeName, "node-name", func(f *fixture) {
		It("leaves pods created with spec.nodeName on their node and counts their requests there", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			f.createNode(ctx, "b", res("1", "1Gi", ""))
			f.createPod(ctx, "pinned", res("800m", "100Mi", ""), withNodeName(f.nodeName("a")))
			for _, n := range names("p", 2) {
				f.createPod(ctx, n, res("400m", "100Mi", ""))
			}
			pods := f.waitBound(ctx, "p0", "p1")
			Expect(pods["pinned"].Spec.NodeName).To(Equal(f.nodeName("a")))
			for _, n := range []string{"p0", "p1"} {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("b")), "node a has only 200m left (pods: %s)", placement(pods))
			}
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))
	})
}

func describeNodeSelector(t Target) {
	describe(t, CapNodeSelector, "node-selector", func(f *fixture) {
		It("places pods only on nodes with every selected label", func(ctx SpecContext) {
			f.createNode(ctx, "ssd", res("4", "4Gi", ""), withNodeLabels("disk", "ssd", "tier", "gold"))
			f.createNode(ctx, "ssd-silver", res("4", "4Gi", ""), withNodeLabels("disk", "ssd", "tier", "silver"))
			f.createNode(ctx, "hdd", res("4", "4Gi", ""), withNodeLabels("disk", "hdd", "tier", "gold"))
			for _, n := range names("p", 4) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withSelector("disk", "ssd", "tier", "gold"))
			}
			f.createPod(ctx, "nowhere", res("100m", "10Mi", ""), withSelector("disk", "nvme"))
			pods := f.waitBound(ctx, names("p", 4)...)
			for _, n := range names("p", 4) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("ssd")), "pod %s", n)
			}
			f.waitUnschedulable(ctx, "nowhere")
		}, SpecTimeout(specTimeout))
	})
}

func nodeAffinity(reqs ...corev1.NodeSelectorRequirement) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: reqs}},
		},
	}}
}

func describeNodeAffinity(t Target) {
	describe(t, CapNodeAffinity, "node-affinity", func(f *fixture) {
		It("obeys required node affinity with In, NotIn and Exists", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
			f.createNode(ctx, "b", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-b", "gpu", "yes"))
			f.createNode(ctx, "c", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-c"))
			in := nodeAffinity(corev1.NodeSelectorRequirement{Key: zoneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"zone-a", "zone-b"}})
			notIn := nodeAffinity(corev1.NodeSelectorRequirement{Key: zoneLabel, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"zone-a", "zone-b"}})
			exists := nodeAffinity(corev1.NodeSelectorRequirement{Key: "gpu", Operator: corev1.NodeSelectorOpExists})
			none := nodeAffinity(corev1.NodeSelectorRequirement{Key: zoneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"zone-x"}})
			for _, n := range names("in", 4) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withAffinity(in))
			}
			for _, n := range names("notin", 2) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withAffinity(notIn))
			}
			f.createPod(ctx, "exists", res("100m", "10Mi", ""), withAffinity(exists))
			f.createPod(ctx, "nowhere", res("100m", "10Mi", ""), withAffinity(none))
			all := append(append(names("in", 4), names("notin", 2)...), "exists")
			pods := f.waitBound(ctx, all...)
			for _, n := range names("in", 4) {
				Expect(pods[n].Spec.NodeName).To(BeElementOf(f.nodeName("a"), f.nodeName("b")), "pod %s", n)
			}
			for _, n := range names("notin", 2) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("c")), "pod %s", n)
			}
			Expect(pods["exists"].Spec.NodeName).To(Equal(f.nodeName("b")))
			f.waitUnschedulable(ctx, "nowhere")
		}, SpecTimeout(specTimeout))
	})
}

// nodeAffinityTerms is a required node affinity whose terms are ORed.
func nodeAffinityTerms(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
}

func describeNodeAffinityTerms(t Target) {
	describe(t, CapNodeAffinity, "node-affinity", func(f *fixture) {
		It("ORs nodeSelectorTerms, ANDs a term's expressions, and obeys Gt, Lt, DoesNotExist and matchFields", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a", "cores", "4"))
			f.createNode(ctx, "b", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-b", "cores", "8", "gpu", "yes"))
			f.createNode(ctx, "c", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-c", "cores", "16", "gpu", "yes"))
			req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
				return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
			}
			term := func(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
				return corev1.NodeSelectorTerm{MatchExpressions: reqs}
			}
			cases := []struct {
				pod  string
				aff  *corev1.Affinity
				want string // the only node that matches
			}{
				// Only the second term matches b: ANDing the terms matches no node.
				{"or-second-term", nodeAffinityTerms(term(req(zoneLabel, corev1.NodeSelectorOpIn, "zone-x")), term(req(zoneLabel, corev1.NodeSelectorOpIn, "zone-b"))), "b"},
				// Each expression alone matches two nodes; together only c.
				{"and-expressions", nodeAffinityTerms(term(req("gpu", corev1.NodeSelectorOpExists), req(zoneLabel, corev1.NodeSelectorOpNotIn, "zone-b"))), "c"},
				// Integer comparison: as strings, "16" < "8".
				{"gt", nodeAffinityTerms(term(req("cores", corev1.NodeSelectorOpGt, "8"))), "c"},
				{"lt", nodeAffinityTerms(term(req("cores", corev1.NodeSelectorOpLt, "8"))), "a"},
				{"does-not-exist", nodeAffinityTerms(term(req("gpu", corev1.NodeSelectorOpDoesNotExist))), "a"},
				{"match-fields", nodeAffinityTerms(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
					req("metadata.name", corev1.NodeSelectorOpIn, f.nodeName("b"))}}), "b"},
			}
			var all []string
			for _, c := range cases {
				// Three pods per case, so that a lucky pick cannot pass.
				for i := range 3 {
					n := fmt.Sprintf("%s-%d", c.pod, i)
					f.createPod(ctx, n, res("100m", "10Mi", ""), withAffinity(c.aff))
					all = append(all, n)
				}
			}
			pods := f.waitBound(ctx, all...)
			for _, c := range cases {
				for i := range 3 {
					n := fmt.Sprintf("%s-%d", c.pod, i)
					Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName(c.want)), "pod %s (pods: %s)", n, placement(pods))
				}
			}
		}, SpecTimeout(specTimeout))
	})
}

func describeTaints(t Target) {
	describe(t, CapTaints, "taints", func(f *fixture) {
		It("keeps pods off nodes whose NoSchedule and NoExecute taints they do not tolerate", func(ctx SpecContext) {
			f.createNode(ctx, "dedicated", res("4", "4Gi", ""), withTaint("dedicated", "db", corev1.TaintEffectNoSchedule))
			f.createNode(ctx, "draining", res("4", "4Gi", ""), withTaint("draining", "", corev1.TaintEffectNoExecute))
			f.createNode(ctx, "soft", res("4", "4Gi", ""), withTaint("soft", "x", corev1.TaintEffectPreferNoSchedule))
			for _, n := range names("p", 6) {
				f.createPod(ctx, n, res("100m", "10Mi", ""))
			}
			pods := f.waitBound(ctx, names("p", 6)...)
			for _, n := range names("p", 6) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("soft")), "pod %s tolerates neither dedicated=db:NoSchedule nor draining:NoExecute", n)
			}
		}, SpecTimeout(specTimeout))

		It("lets pods that tolerate a taint on the tainted node, and leaves the others pending", func(ctx SpecContext) {
			f.createNode(ctx, "dedicated", res("4", "4Gi", ""), withTaint("dedicated", "db", corev1.TaintEffectNoSchedule))
			f.createPod(ctx, "tolerant", res("100m", "10Mi", ""), withToleration("dedicated", "db", corev1.TaintEffectNoSchedule))
			f.createPod(ctx, "wrong-value", res("100m", "10Mi", ""), withToleration("dedicated", "web", corev1.TaintEffectNoSchedule))
			f.createPod(ctx, "intolerant", res("100m", "10Mi", ""))
			pods := f.waitBound(ctx, "tolerant")
			Expect(pods["tolerant"].Spec.NodeName).To(Equal(f.nodeName("dedicated")))
			f.waitUnschedulable(ctx, "wrong-value", "intolerant")
			f.expectStaysPending(ctx, "wrong-value", "intolerant")
		}, SpecTimeout(specTimeout))
	})
}

func describeTolerations(t Target) {
	describe(t, CapTaints, "taints", func(f *fixture) {
		It("matches tolerations by operator Exists (an empty key tolerates every taint), Equal's value, and effect (empty: every effect)", func(ctx SpecContext) {
			f.createNode(ctx, "dedicated", res("4", "4Gi", ""), withTaint("dedicated", "db", corev1.TaintEffectNoSchedule))
			tol := func(key string, op corev1.TolerationOperator, value string, effect corev1.TaintEffect) podOpt {
				return func(p *corev1.Pod) {
					p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
				}
			}
			fits := map[string]podOpt{
				"exists-key": tol("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule),
				"exists-all": tol("", corev1.TolerationOpExists, "", ""),
				"equal-any":  tol("dedicated", corev1.TolerationOpEqual, "db", ""),
				"exists-any": tol("dedicated", corev1.TolerationOpExists, "", ""),
				"default-op": tol("dedicated", "", "db", corev1.TaintEffectNoSchedule), // the operator defaults to Equal
			}
			pending := map[string]podOpt{
				"wrong-effect": tol("dedicated", corev1.TolerationOpEqual, "db", corev1.TaintEffectNoExecute),
				"other-key":    tol("other", corev1.TolerationOpExists, "", ""),
				"soft-effect":  tol("dedicated", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule),
			}
			var fitting, waiting []string
			for n, o := range fits {
				f.createPod(ctx, n, res("100m", "10Mi", ""), o)
				fitting = append(fitting, n)
			}
			for n, o := range pending {
				f.createPod(ctx, n, res("100m", "10Mi", ""), o)
				waiting = append(waiting, n)
			}
			pods := f.waitBound(ctx, fitting...)
			for _, n := range fitting {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("dedicated")), "pod %s", n)
			}
			f.waitUnschedulable(ctx, waiting...)
			f.expectStaysPending(ctx, waiting...)
		}, SpecTimeout(specTimeout))
	})
}

func describeUnschedulableNode(t Target) {
	describe(t, CapUnschedulableNode, "unschedulable-node", func(f *fixture) {
		It("places no pod on a cordoned node", func(ctx SpecContext) {
			f.createNode(ctx, "cordoned", res("4", "4Gi", ""), withUnschedulable())
			f.createNode(ctx, "open", res("4", "4Gi", ""))
			for _, n := range names("p", 5) {
				f.createPod(ctx, n, res("100m", "10Mi", ""))
			}
			pods := f.waitBound(ctx, names("p", 5)...)
			for _, n := range names("p", 5) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("open")), "pod %s", n)
			}
		}, SpecTimeout(specTimeout))

		It("leaves pods pending when only cordoned nodes are left", func(ctx SpecContext) {
			f.createNode(ctx, "cordoned", res("4", "4Gi", ""), withUnschedulable())
			f.createPod(ctx, "p", res("100m", "10Mi", ""))
			f.waitUnschedulable(ctx, "p")
			f.expectStaysPending(ctx, "p")
		}, SpecTimeout(specTimeout))
	})
}

func describeHostPorts(t Target) {
	describe(t, CapHostPorts, "host-ports", func(f *fixture) {
		It("never puts two pods with the same host port and protocol on one node", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""))
			f.createNode(ctx, "b", res("4", "4Gi", ""))
			for _, n := range names("tcp", 3) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withHostPort(8080, corev1.ProtocolTCP))
			}
			f.createPod(ctx, "udp", res("100m", "10Mi", ""), withHostPort(8080, corev1.ProtocolUDP))
			pods := f.pods(ctx)
			Eventually(ctx, func(g Gomega) {
				pods = f.pods(ctx)
				n := 0
				for _, name := range names("tcp", 3) {
					if pods[name].Spec.NodeName != "" {
						n++
					}
				}
				g.Expect(n).To(Equal(2), "two of the tcp pods are bound: %s", placement(pods))
				g.Expect(pods["udp"].Spec.NodeName).NotTo(BeEmpty(), "the udp pod shares the port number, not the protocol")
			}).WithTimeout(bindTimeout).Should(Succeed())
			time.Sleep(settle)
			pods = f.pods(ctx)
			seen := map[string]string{}
			for _, name := range names("tcp", 3) {
				node := pods[name].Spec.NodeName
				if node == "" {
					continue
				}
				Expect(seen).NotTo(HaveKey(node), "pods %s and %s both use host port 8080/TCP on %s", seen[node], name, node)
				seen[node] = name
			}
		}, SpecTimeout(specTimeout))
	})
}

func describeHostIPs(t Target) {
	describe(t, CapHostPorts, "host-ports", func(f *fixture) {
		It("lets pods share a host port on distinct host IPs, and takes an unset host IP (0.0.0.0) for every IP", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""))
			withIP := func(ip string) podOpt {
				return func(p *corev1.Pod) {
					c := &p.Spec.Containers[0]
					c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 8080, HostPort: 8080, HostIP: ip, Protocol: corev1.ProtocolTCP})
				}
			}
			f.createPod(ctx, "ip-1", res("100m", "10Mi", ""), withIP("10.0.0.1"))
			f.createPod(ctx, "ip-2", res("100m", "10Mi", ""), withIP("10.0.0.2"))
			f.waitBound(ctx, "ip-1", "ip-2")
			f.createPod(ctx, "ip-1-again", res("100m", "10Mi", ""), withIP("10.0.0.1"))
			f.createPod(ctx, "unset", res("100m", "10Mi", ""), withIP(""))
			f.createPod(ctx, "any", res("100m", "10Mi", ""), withIP("0.0.0.0"))
			f.waitUnschedulable(ctx, "ip-1-again", "unset", "any")
			f.expectStaysPending(ctx, "ip-1-again", "unset", "any")
		}, SpecTimeout(specTimeout))

		It("keeps a specific host IP off a node whose host port is bound to 0.0.0.0", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""))
			f.createPod(ctx, "wildcard", res("100m", "10Mi", ""), withHostPort(8080, corev1.ProtocolTCP))
			f.waitBound(ctx, "wildcard")
			f.createPod(ctx, "specific", res("100m", "10Mi", ""), func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 8080, HostPort: 8080, HostIP: "10.0.0.1", Protocol: corev1.ProtocolTCP})
			})
			f.waitUnschedulable(ctx, "specific")
			f.expectStaysPending(ctx, "specific")
		}, SpecTimeout(specTimeout))
	})
}

func describeTopologySpread(t Target) {
	describe(t, CapTopologySpread, "topology-spread", func(f *fixture) {
		It("keeps the final skew across zones within maxSkew (DoNotSchedule)", func(ctx SpecContext) {
			zones := []string{"zone-a", "zone-b", "zone-c"}
			for i, z := range zones {
				// zone-a has the most room, so a scheduler that packs or
				// ignores the constraint would crowd it.
				cpu := []string{"16", "4", "4"}[i]
				f.createNode(ctx, fmt.Sprintf("%s-1", z), res(cpu, "16Gi", ""), withNodeLabels(zoneLabel, z))
				f.createNode(ctx, fmt.Sprintf("%s-2", z), res(cpu, "16Gi", ""), withNodeLabels(zoneLabel, z))
			}
			c := corev1.TopologySpreadConstraint{
				MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
			}
			const n = 15
			for _, name := range names("p", n) {
				f.createPod(ctx, name, res("100m", "10Mi", ""), withLabels("app", "spread"), withSpread(c))
			}
			pods := f.waitBound(ctx, names("p", n)...)
			nodes, err := f.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: SpecLabel + "=" + f.id})
			Expect(err).NotTo(HaveOccurred())
			zoneOf := map[string]string{}
			for _, node := range nodes.Items {
				zoneOf[node.Name] = node.Labels[zoneLabel]
			}
			count := map[string]int{}
			for _, p := range pods {
				count[zoneOf[p.Spec.NodeName]]++
			}
			lo, hi := n, 0
			for _, z := range zones {
				lo, hi = min(lo, count[z]), max(hi, count[z])
			}
			Expect(hi-lo).To(BeNumerically("<=", 1), "pods per zone %v: skew %d exceeds maxSkew 1", count, hi-lo)
		}, SpecTimeout(specTimeout))
	})
}

func describeSpreadAnyway(t Target) {
	describe(t, CapTopologySpread, "topology-spread", func(f *fixture) {
		It("places pods whose ScheduleAnyway constraint it cannot satisfy", func(ctx SpecContext) {
			// zone-b has no room: only zone-a can take the pods, and every
			// pod after the first exceeds maxSkew there.
			f.createNode(ctx, "zone-a-1", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
			f.createNode(ctx, "zone-b-1", res("100m", "4Gi", ""), withNodeLabels(zoneLabel, "zone-b"))
			c := corev1.TopologySpreadConstraint{
				MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "anyway"}},
			}
			for _, name := range names("p", 3) {
				f.createPod(ctx, name, res("200m", "10Mi", ""), withLabels("app", "anyway"), withSpread(c))
			}
			pods := f.waitBound(ctx, names("p", 3)...)
			for _, n := range names("p", 3) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("zone-a-1")), "pod %s", n)
			}
		}, SpecTimeout(specTimeout))
	})
}

func podAffinityTerm(app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		TopologyKey:   hostnameLabel,
	}
}

func describePodAffinity(t Target) {
	describe(t, CapPodAffinity, "pod-affinity", func(f *fixture) {
		It("places pods on the node of the pods their required affinity selects", func(ctx SpecContext) {
			for _, n := range []string{"a", "b", "c"} {
				f.createNode(ctx, n, res("4", "4Gi", ""))
			}
			f.createPod(ctx, "server", res("100m", "10Mi", ""), withLabels("app", "server"), withNodeName(f.nodeName("b")))
			aff := &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podAffinityTerm("server")},
			}}
			for _, n := range names("client", 4) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withLabels("app", "client"), withAffinity(aff))
			}
			orphanAff := &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podAffinityTerm("absent")},
			}}
			f.createPod(ctx, "orphan", res("100m", "10Mi", ""), withLabels("app", "orphan"), withAffinity(orphanAff))
			pods := f.waitBound(ctx, names("client", 4)...)
			for _, n := range names("client", 4) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("b")), "pod %s must join the server", n)
			}
			f.waitUnschedulable(ctx, "orphan")
		}, SpecTimeout(specTimeout))
	})
}

// zoneNodes makes nodes a1 (room for one more 100m pod) and a2 in zone-a
// and b1 in zone-b.
func (f *fixture) zoneNodes(ctx context.Context) {
	GinkgoHelper()
	f.createNode(ctx, "a1", res("200m", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
	f.createNode(ctx, "a2", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
	f.createNode(ctx, "b1", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-b"))
}

// zoneTerm is a pod affinity term selecting app across zones.
func zoneTerm(app string) corev1.PodAffinityTerm {
	t := podAffinityTerm(app)
	t.TopologyKey = zoneLabel
	return t
}

func describePodAffinityZones(t Target) {
	describe(t, CapPodAffinity, "pod-affinity", func(f *fixture) {
		It("places pods in the topology domain of their topologyKey, not only on the selected pod's node", func(ctx SpecContext) {
			f.zoneNodes(ctx)
			f.createPod(ctx, "server", res("100m", "10Mi", ""), withLabels("app", "server"), withNodeName(f.nodeName("a1")))
			aff := &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{zoneTerm("server")},
			}}
			for _, n := range names("client", 4) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withLabels("app", "client"), withAffinity(aff))
			}
			// Node a1 has room for one client: the others need node a2.
			pods := f.waitBound(ctx, names("client", 4)...)
			for _, n := range names("client", 4) {
				Expect(pods[n].Spec.NodeName).To(BeElementOf(f.nodeName("a1"), f.nodeName("a2")), "pod %s must join the server's zone (pods: %s)", n, placement(pods))
			}
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))
	})
}

func describePodAntiAffinity(t Target) {
	describe(t, CapPodAntiAffinity, "pod-anti-affinity", func(f *fixture) {
		It("never puts two pods that repel each other on one node", func(ctx SpecContext) {
			for _, n := range []string{"a", "b", "c"} {
				f.createNode(ctx, n, res("4", "4Gi", ""))
			}
			aff := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podAffinityTerm("one-per-node")},
			}}
			for _, n := range names("p", 4) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withLabels("app", "one-per-node"), withAffinity(aff))
			}
			pods := f.waitBoundCount(ctx, 3)
			seen := map[string]string{}
			for name, p := range pods {
				if p.Spec.NodeName == "" {
					continue
				}
				Expect(seen).NotTo(HaveKey(p.Spec.NodeName), "pods %s and %s share node %s", seen[p.Spec.NodeName], name, p.Spec.NodeName)
				seen[p.Spec.NodeName] = name
			}
		}, SpecTimeout(specTimeout))

		It("honours the anti-affinity of pods already on a node (symmetry)", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("4", "4Gi", ""))
			f.createNode(ctx, "b", res("4", "4Gi", ""))
			aff := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{podAffinityTerm("web")},
			}}
			f.createPod(ctx, "loner", res("100m", "10Mi", ""), withLabels("app", "loner"), withAffinity(aff), withNodeName(f.nodeName("a")))
			for _, n := range names("web", 3) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withLabels("app", "web"))
			}
			pods := f.waitBound(ctx, names("web", 3)...)
			for _, n := range names("web", 3) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("b")), "pod %s is repelled by loner on node a", n)
			}
		}, SpecTimeout(specTimeout))
	})
}

func describePodAntiAffinityZones(t Target) {
	describe(t, CapPodAntiAffinity, "pod-anti-affinity", func(f *fixture) {
		It("keeps pods out of the whole topology domain of their topologyKey, not only off the repelling pod's node", func(ctx SpecContext) {
			// Node a2 has the most room, so a scheduler that takes the
			// term per node would favour it.
			f.createNode(ctx, "a1", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
			f.createNode(ctx, "a2", res("16", "16Gi", ""), withNodeLabels(zoneLabel, "zone-a"))
			f.createNode(ctx, "b1", res("4", "4Gi", ""), withNodeLabels(zoneLabel, "zone-b"))
			// web itself has no anti-affinity: only the incoming pods' terms decide.
			f.createPod(ctx, "web", res("100m", "10Mi", ""), withLabels("app", "web"), withNodeName(f.nodeName("a1")))
			aff := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{zoneTerm("web")},
			}}
			for _, n := range names("shy", 3) {
				f.createPod(ctx, n, res("100m", "10Mi", ""), withLabels("app", "shy"), withAffinity(aff))
			}
			pods := f.waitBound(ctx, names("shy", 3)...)
			for _, n := range names("shy", 3) {
				Expect(pods[n].Spec.NodeName).To(Equal(f.nodeName("b1")), "pod %s repels web's zone, zone-a (pods: %s)", n, placement(pods))
			}
		}, SpecTimeout(specTimeout))
	})
}

func describePriority(t Target) {
	describe(t, CapPriority, "priority", func(f *fixture) {
		It("gives room that appears to the higher-priority pending pods first", func(ctx SpecContext) {
			low := f.priorityClass(ctx, "low", 100)
			high := f.priorityClass(ctx, "high", 1000)
			f.createNode(ctx, "a", res("1", "1Gi", ""), withUnschedulable())
			// The low-priority pods come first, so that creation order
			// alone would favour them.
			for _, n := range names("low", 2) {
				f.createPod(ctx, n, res("400m", "100Mi", ""), withPriority(low, 100))
			}
			for _, n := range names("high", 2) {
				f.createPod(ctx, n, res("400m", "100Mi", ""), withPriority(high, 1000))
			}
			f.waitUnschedulable(ctx, "low0", "low1", "high0", "high1")
			time.Sleep(3 * time.Second) // let every pod's retry backoff expire
			node, err := f.client.CoreV1().Nodes().Get(ctx, f.nodeName("a"), metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			node.Spec.Unschedulable = false
			_, err = f.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred(), "uncordoning the node")
			pods := f.waitBound(ctx, "high0", "high1")
			Expect(pods["low0"].Spec.NodeName).To(BeEmpty(), "pods: %s", placement(pods))
			Expect(pods["low1"].Spec.NodeName).To(BeEmpty(), "pods: %s", placement(pods))
			f.expectStaysPending(ctx, "low0", "low1")
		}, SpecTimeout(specTimeout))
	})
}

// expectNotDeleted checks that pod name still exists with uid and no
// deletion timestamp.
func (f *fixture) expectNotDeleted(ctx context.Context, name string, uid types.UID) {
	GinkgoHelper()
	p, err := f.client.CoreV1().Pods(f.ns).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "pod %s must not be preempted", name)
	Expect(p.UID).To(Equal(uid), "pod %s must not be preempted (it was recreated?)", name)
	Expect(p.DeletionTimestamp).To(BeNil(), "pod %s must not be preempted", name)
}

// gone reports whether pod name with uid no longer exists or is being
// deleted.
func (f *fixture) gone(ctx context.Context, name string, uid types.UID) bool {
	p, err := f.client.CoreV1().Pods(f.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	return err == nil && (p.UID != uid || p.DeletionTimestamp != nil)
}

func describePreemption(t Target) {
	describe(t, CapPreemption, "preemption", func(f *fixture) {
		It("evicts as few lower-priority pods as needed for a higher-priority pod", func(ctx SpecContext) {
			low := f.priorityClass(ctx, "low", 100)
			high := f.priorityClass(ctx, "high", 1000)
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			victims := map[string]types.UID{}
			for _, n := range names("low", 2) {
				victims[n] = f.createPod(ctx, n, res("400m", "100Mi", ""), withPriority(low, 100)).UID
			}
			f.waitBound(ctx, "low0", "low1")
			f.createPod(ctx, "preemptor", res("400m", "100Mi", ""), withPriority(high, 1000))
			pods := f.waitBound(ctx, "preemptor")
			Expect(pods["preemptor"].Spec.NodeName).To(Equal(f.nodeName("a")))
			evicted := 0
			for n, uid := range victims {
				if f.gone(ctx, n, uid) {
					evicted++
				}
			}
			Expect(evicted).To(Equal(1), "one 400m victim frees enough room on a 1-cpu node holding 800m; pods: %s", placement(f.pods(ctx)))
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("chooses victims whose eviction violates no PodDisruptionBudget over fewer victims that violate one", func(ctx SpecContext) {
			low := f.priorityClass(ctx, "low", 100)
			high := f.priorityClass(ctx, "high", 1000)
			// The budget first, so that the scheduler has it long before
			// it preempts.
			f.createPDB(ctx, "guarded", map[string]string{"app": "guarded"}, 0)
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			f.createNode(ctx, "b", res("1", "1Gi", ""))
			// Without the budget, node a is the better candidate: one
			// victim instead of two of the same priority.
			guarded := f.createPod(ctx, "guarded", res("800m", "100Mi", ""), withPriority(low, 100), withNodeName(f.nodeName("a")), withLabels("app", "guarded"))
			free := map[string]types.UID{}
			for _, n := range names("free", 2) {
				free[n] = f.createPod(ctx, n, res("500m", "100Mi", ""), withPriority(low, 100), withNodeName(f.nodeName("b"))).UID
			}
			// A pod that needs no room and is never a victim (the
			// preemptor's priority): once the scheduler has bound it, it
			// has seen the pods created before it, so the preemptor's
			// cycle never runs on nodes it believes empty.
			f.createPod(ctx, "seen", res("", "", ""), withPriority(high, 1000))
			f.waitBound(ctx, "seen")
			f.createPod(ctx, "preemptor", res("700m", "100Mi", ""), withPriority(high, 1000))
			pods := f.waitBound(ctx, "preemptor")
			Expect(pods["preemptor"].Spec.NodeName).To(Equal(f.nodeName("b")), "evicting pod guarded would violate its PodDisruptionBudget; pods: %s", placement(pods))
			for n, uid := range free {
				Expect(f.gone(ctx, n, uid)).To(BeTrue(), "pod %s made room on node b", n)
			}
			f.expectNotDeleted(ctx, "guarded", guarded.UID)
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(specTimeout))

		It("never evicts a pod of higher or equal priority", func(ctx SpecContext) {
			mid := f.priorityClass(ctx, "mid", 500)
			high := f.priorityClass(ctx, "high", 1000)
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			top := f.createPod(ctx, "top", res("600m", "100Mi", ""), withPriority(high, 1000))
			peer := f.createPod(ctx, "peer", res("300m", "100Mi", ""), withPriority(mid, 500))
			f.waitBound(ctx, "top", "peer")
			f.createPod(ctx, "mid", res("400m", "100Mi", ""), withPriority(mid, 500))
			f.waitUnschedulable(ctx, "mid")
			Consistently(ctx, func(g Gomega) {
				g.Expect(f.gone(ctx, "top", top.UID)).To(BeFalse(), "pod top (priority 1000) was preempted for a pod of priority 500")
				g.Expect(f.gone(ctx, "peer", peer.UID)).To(BeFalse(), "pod peer (priority 500) was preempted for a pod of equal priority")
			}).WithTimeout(settle).WithPolling(250 * time.Millisecond).Should(Succeed())
			f.expectNotDeleted(ctx, "top", top.UID)
			f.expectNotDeleted(ctx, "peer", peer.UID)
			f.expectStaysPending(ctx, "mid")
		}, SpecTimeout(specTimeout))
	})
}

func describeRequeue(t Target) {
	describe(t, CapRequeue, "requeue", func(f *fixture) {
		It("schedules a pending pod once a node that fits it is added", func(ctx SpecContext) {
			f.createNode(ctx, "small", res("1", "1Gi", ""))
			f.createPod(ctx, "big", res("2", "100Mi", ""))
			f.waitUnschedulable(ctx, "big")
			f.createNode(ctx, "large", res("4", "4Gi", ""))
			pods := f.waitBound(ctx, "big")
			Expect(pods["big"].Spec.NodeName).To(Equal(f.nodeName("large")))
		}, SpecTimeout(specTimeout))

		It("schedules a pending pod once a pod in its way is deleted", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			f.createPod(ctx, "first", res("700m", "100Mi", ""))
			f.waitBound(ctx, "first")
			f.createPod(ctx, "second", res("700m", "100Mi", ""))
			f.waitUnschedulable(ctx, "second")
			Expect(f.client.CoreV1().Pods(f.ns).Delete(ctx, "first", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})).To(Succeed())
			f.waitBound(ctx, "second")
		}, SpecTimeout(specTimeout))

		It("schedules a pending pod once its node is uncordoned", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "1Gi", ""), withUnschedulable())
			f.createPod(ctx, "p", res("100m", "10Mi", ""))
			f.waitUnschedulable(ctx, "p")
			node, err := f.client.CoreV1().Nodes().Get(ctx, f.nodeName("a"), metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			node.Spec.Unschedulable = false
			_, err = f.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
			Expect(err).NotTo(HaveOccurred())
			f.waitBound(ctx, "p")
		}, SpecTimeout(specTimeout))
	})
}

func describePendingStatus(t Target) {
	describe(t, CapPendingStatus, "pending-status", func(f *fixture) {
		It("reports PodScheduled=False with reason Unschedulable and a message for a pod that fits nowhere", func(ctx SpecContext) {
			f.createNode(ctx, "a", res("1", "1Gi", ""))
			f.createPod(ctx, "huge", res("64", "100Mi", ""))
			f.waitUnschedulable(ctx, "huge")
			p, err := f.client.CoreV1().Pods(f.ns).Get(ctx, "huge", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			c := podScheduled(p)
			Expect(c.Message).NotTo(BeEmpty(), "the PodScheduled condition says why")
			Expect(p.Status.Phase).To(Equal(corev1.PodPending))
		}, SpecTimeout(specTimeout))
	})
}

func describeBurst(t Target) {
	describe(t, CapBurst, "burst", func(f *fixture) {
		It("binds 1 000 pods created at once, overcommitting no node", func(ctx SpecContext) {
			// 30 nodes of 4 cpu / 32Gi / 110 pods; 1 000 pods of 100m /
			// 500Mi fill them to 83 % of their cpu (the upstream
			// scheduler_perf shapes).
			const nodes, pods = 30, 1000
			for i := range nodes {
				f.createNode(ctx, fmt.Sprintf("n%02d", i), res("4", "32Gi", "110"))
			}
			f.createPodsParallel(ctx, pods, res("100m", "500Mi", ""))
			Eventually(ctx, func(g Gomega) {
				l, err := f.client.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(l.Items).To(BeEmpty(), "pods still pending")
			}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
			Expect(bound(f.pods(ctx))).To(Equal(pods))
			f.expectNoOvercommit(ctx)
		}, SpecTimeout(5*time.Minute))
	}, harness.LabelSlow)
}

// createPodsParallel creates n pods named p0000… with requests, 8 at a
// time.
func (f *fixture) createPodsParallel(ctx context.Context, n int, requests corev1.ResourceList, opts ...podOpt) {
	GinkgoHelper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				p := f.pod(fmt.Sprintf("p%04d", i), requests, opts...)
				if _, err := f.client.CoreV1().Pods(f.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred(), "creating pods")
	}
}

func describeChurn(t Target) {
	describe(t, CapChurn, "churn", func(f *fixture) {
		It("places every pod it can on nodes that exist while nodes and pods are deleted", func(ctx SpecContext) {
			// 12 nodes of 2 cpu hold 240 pods of 100m; 200 are created, 3
			// nodes and 60 pods deleted while they are scheduled, 2 nodes
			// added: the 140 left fit in the 11 nodes' 220 slots.
			for i := range 12 {
				f.createNode(ctx, fmt.Sprintf("n%02d", i), res("2", "8Gi", ""))
			}
			done := make(chan struct{})
			go func() {
				defer GinkgoRecover()
				defer close(done)
				time.Sleep(200 * time.Millisecond)
				for i := range 3 {
					_ = f.client.CoreV1().Nodes().Delete(ctx, f.nodeName(fmt.Sprintf("n%02d", i)), metav1.DeleteOptions{})
					time.Sleep(100 * time.Millisecond)
				}
				for i := 0; i < 200; i += 10 {
					for j := range 3 {
						_ = f.client.CoreV1().Pods(f.ns).Delete(ctx, fmt.Sprintf("p%04d", i+j), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
					}
				}
				for i := 12; i < 14; i++ {
					f.createNode(ctx, fmt.Sprintf("n%02d", i), res("2", "8Gi", ""))
				}
			}()
			f.createPodsParallel(ctx, 200, res("100m", "100Mi", ""))
			<-done
			deleted := map[string]bool{}
			for i := range 3 {
				deleted[f.nodeName(fmt.Sprintf("n%02d", i))] = true
			}
			known := map[string]bool{}
			for i := range 14 {
				known[f.nodeName(fmt.Sprintf("n%02d", i))] = true
			}
			Eventually(ctx, func(g Gomega) {
				pods := f.pods(ctx)
				for name, p := range pods {
					g.Expect(known).To(HaveKey(p.Spec.NodeName), "pod %s is pending or on an unknown node %q", name, p.Spec.NodeName)
				}
			}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
			// Pods bound before their node went remain on it (nothing
			// garbage-collects them here); pods deleted on purpose are
			// gone, and the surviving nodes are not overcommitted.
			f.expectNoOvercommit(ctx)
			pods := f.pods(ctx)
			onLive := 0
			for _, p := range pods {
				if !deleted[p.Spec.NodeName] {
					onLive++
				}
			}
			GinkgoWriter.Printf("churn: %d pods left, %d on live nodes\n", len(pods), onLive)
		}, SpecTimeout(2*time.Minute))
	}, harness.LabelSlow)
}
