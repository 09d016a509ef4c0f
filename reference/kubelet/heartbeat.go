package kubelet

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runtimeProblem asks the runtime for its status and says why it is not
// ready ("" when RuntimeReady and NetworkReady are both true), in
// upstream's words.
func (k *Kubelet) runtimeProblem(ctx context.Context) string {
	resp, err := k.rt.Status(ctx, false)
	if err != nil {
		return fmt.Sprintf("container runtime status check may not have completed yet: %v", err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range resp.GetStatus().GetConditions() {
		conds[c.GetType()] = c
	}
	var problems []string
	for _, t := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		c := conds[t]
		switch {
		case c == nil:
			problems = append(problems, fmt.Sprintf("container runtime did not report %s", t))
		case !c.GetStatus():
			what := "container runtime is down"
			if t == runtimeapi.NetworkReady {
				what = "container runtime network not ready"
			}
			problems = append(problems, fmt.Sprintf("%s: %s=false reason:%s message:%s", what, t, c.GetReason(), c.GetMessage()))
		}
	}
	return strings.Join(problems, ", ")
}

// nodeFacts gathers NodeFacts at now.
func (k *Kubelet) nodeFacts(ctx context.Context) NodeFacts {
	return NodeFacts{
		Capacity:    k.capacity,
		Allocatable: k.allocatable,
		Addresses:   k.addresses(),
		Info:        k.sysInfo,
		RuntimeErr:  k.runtimeProblem(ctx),
		Now:         k.now(),
		KubeletPort: k.apiPort(),
	}
}

// apiPort is the port of the kubelet API (0 when not served), published
// in status.daemonEndpoints for the API server's proxy.
func (k *Kubelet) apiPort() int32 {
	if k.cfg.APIAddr == "" {
		return 0
	}
	_, port, err := net.SplitHostPort(k.cfg.APIAddr)
	if err != nil {
		return 0
	}
	p, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return 0
	}
	return int32(p)
}

func (k *Kubelet) addresses() []corev1.NodeAddress {
	var out []corev1.NodeAddress
	if k.cfg.InternalIP != "" {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.cfg.InternalIP})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: k.cfg.Hostname})
}

// register creates the Node, or adopts an existing one of the same name
// (updating its labels), and posts its first status. It returns the Node.
func (k *Kubelet) register(ctx context.Context) (*corev1.Node, error) {
	nodes := k.client.CoreV1().Nodes()
	labels := NodeLabels(k.cfg.Hostname)
	for key, v := range k.cfg.Labels {
		labels[key] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: labels}}
	n.Spec.PodCIDR = k.cfg.PodCIDR
	if k.cfg.PodCIDR != "" {
		n.Spec.PodCIDRs = []string{k.cfg.PodCIDR}
	}
	created, err := nodes.Create(ctx, n, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := nodes.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if gerr != nil {
			return nil, gerr
		}
		changed := false
		if existing.Labels == nil {
			existing.Labels = map[string]string{}
		}
		for key, v := range labels {
			if existing.Labels[key] != v {
				existing.Labels[key], changed = v, true
			}
		}
		if existing.Spec.PodCIDR == "" && k.cfg.PodCIDR != "" {
			existing.Spec.PodCIDR, existing.Spec.PodCIDRs, changed = n.Spec.PodCIDR, n.Spec.PodCIDRs, true
		}
		if changed {
			if existing, err = nodes.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
				return nil, err
			}
		}
		created, err = existing, nil
	}
	if err != nil {
		return nil, fmt.Errorf("register node %q: %w", k.cfg.NodeName, err)
	}
	return created, nil
}

// postStatus computes the Node's status and posts it through the status
// subresource when NodeStatusNeedsPost says so (force: always).
func (k *Kubelet) postStatus(ctx context.Context, force bool) error {
	n, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	k.applyPodCIDR(ctx, n)
	k.node.Store(n)
	facts := k.nodeFacts(ctx)
	st := ComputeNodeStatus(n.Status, facts)
	if !force && !NodeStatusNeedsPost(n.Status, st, k.lastNodePost, facts.Now, k.cfg.NodeStatusReportFrequency) {
		return nil
	}
	n.Status = st
	updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("node %q status: %w", k.cfg.NodeName, err)
	}
	k.node.Store(updated)
	k.lastNodePost = facts.Now
	return nil
}

// applyPodCIDR hands the Node's podCIDR (set by the flag or by a
// controller) to the runtime once, as upstream does with
// UpdateRuntimeConfig. A runtime that does not implement it is fine.
func (k *Kubelet) applyPodCIDR(ctx context.Context, n *corev1.Node) {
	cidr := n.Spec.PodCIDR
	if cidr == "" || cidr == k.podCIDR {
		return
	}
	type configurer interface {
		UpdateRuntimeConfig(ctx context.Context, c *runtimeapi.RuntimeConfig) error
	}
	if rc, ok := k.rt.(configurer); ok {
		if err := rc.UpdateRuntimeConfig(ctx, &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}}); err != nil {
			k.log.Warn("runtime did not take the pod CIDR", "cidr", cidr, "err", err)
		}
	}
	k.podCIDR = cidr
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(NodeLeaseNamespace)
	now := metav1.NewMicroTime(k.now())
	dur := int32(k.cfg.LeaseDuration / time.Second)
	l, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Namespace: NodeLeaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptrTo(k.cfg.NodeName),
				LeaseDurationSeconds: ptrTo(dur),
				RenewTime:            &now,
			},
		}
		if k.nodeUID != "" {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: k.cfg.NodeName, UID: k.nodeUID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = ptrTo(k.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptrTo(dur)
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the Lease every LeaseRenewInterval and checks the node
// status every NodeStatusUpdateFrequency until ctx ends.
func (k *Kubelet) heartbeat(ctx context.Context) {
	lease := time.NewTicker(k.cfg.LeaseRenewInterval)
	defer lease.Stop()
	status := time.NewTicker(k.cfg.NodeStatusUpdateFrequency)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("lease renewal failed", "err", err)
			}
		case <-status.C:
			if err := k.postStatus(ctx, false); err != nil && ctx.Err() == nil {
				k.log.Warn("node status update failed", "err", err)
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
