package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apiserver/pkg/authentication/user"
)

// NodeRestrictionName is the NodeRestriction plugin's name.
const NodeRestrictionName = "NodeRestriction"

// NodeUserPrefix prefixes a kubelet's user name: system:node:<nodeName>.
const NodeUserPrefix = "system:node:"

// RestrictedLabelPrefix marks node labels that a kubelet may not set on its
// own Node (so workloads may trust them), as upstream.
const RestrictedLabelPrefix = "node-restriction.kubernetes.io/"

// NodeName returns the node a user acts for: "n1" for user
// system:node:n1 in group system:nodes. isNode is false for other users;
// a member of system:nodes whose name lacks the prefix gets isNode true
// and name "" (and is refused everything NodeRestriction checks).
func NodeName(u user.Info) (name string, isNode bool) {
	if u == nil || !slices.Contains(u.GetGroups(), user.NodesGroup) {
		return "", false
	}
	n, ok := strings.CutPrefix(u.GetName(), NodeUserPrefix)
	if !ok {
		return "", true
	}
	return n, true
}

// NodeRestriction is a validating plugin limiting what a kubelet (see
// NodeName) may write, beyond what RBAC's system:node role grants; other
// users pass. A node:
//   - nodes: may create, update (main resource and status) and delete only
//     the Node named after it; may not change its spec.taints through the
//     main resource after creation, nor set, change or remove labels under
//     RestrictedLabelPrefix;
//   - pods: may update pods/status only of pods with spec.nodeName equal to
//     its name (judged on the stored pod), and may not change their labels,
//     annotations or owner references that way; may delete only pods bound
//     to it; may evict (pods/eviction) only pods bound to it, judged on
//     OldObject, which must then be the stored pod; may not create or
//     update pods (mirror pods are not supported) nor use other pod
//     subresources (binding, exec, …);
//   - leases in kube-node-lease and csinodes: only the one named after it.
//
// Denials are 403 Forbidden with upstream's messages.
type NodeRestriction struct{}

var _ ValidatingPlugin = (*NodeRestriction)(nil)

// NewNodeRestriction returns the plugin.
func NewNodeRestriction() *NodeRestriction { return &NodeRestriction{} }

// Name implements Plugin.
func (*NodeRestriction) Name() string { return NodeRestrictionName }

// Validate implements ValidatingPlugin.
func (p *NodeRestriction) Validate(_ context.Context, a *Attributes) error {
	nodeName, isNode := NodeName(a.UserInfo)
	if !isNode {
		return nil
	}
	if nodeName == "" {
		return NewForbidden(a, fmt.Errorf("could not determine node from user %q", a.UserInfo.GetName()))
	}
	switch {
	case a.Resource.Group == "" && a.Resource.Resource == "nodes":
		return p.node(a, nodeName)
	case a.Resource.Group == "" && a.Resource.Resource == "pods":
		return p.pod(a, nodeName)
	case a.Resource.Group == "coordination.k8s.io" && a.Resource.Resource == "leases" && a.Namespace == corev1.NamespaceNodeLease:
		if a.Name != nodeName && objectName(a) != nodeName {
			return NewForbidden(a, fmt.Errorf("can only access node lease with the same name as the requesting node"))
		}
	case a.Resource.Group == "storage.k8s.io" && a.Resource.Resource == "csinodes":
		if a.Name != nodeName && objectName(a) != nodeName {
			return NewForbidden(a, fmt.Errorf("can only access CSINode with the same name as the requesting node"))
		}
	}
	return nil
}

func (p *NodeRestriction) node(a *Attributes, nodeName string) error {
	target := a.Name
	if target == "" {
		target = objectName(a)
	}
	if target != nodeName {
		return NewForbidden(a, fmt.Errorf("node %q is not allowed to modify node %q", nodeName, target))
	}
	if a.Operation != Create && a.Operation != Update {
		return nil
	}
	node, ok := a.Object.(*corev1.Node)
	if !ok {
		return wrongType(a, a.Object)
	}
	var old *corev1.Node
	if a.Operation == Update {
		if old, ok = a.OldObject.(*corev1.Node); !ok {
			return wrongType(a, a.OldObject)
		}
	}
	if a.Operation == Update && a.Subresource == "" && !equality.Semantic.DeepEqual(node.Spec.Taints, old.Spec.Taints) {
		return NewForbidden(a, fmt.Errorf("node %q is not allowed to modify taints", nodeName))
	}
	var oldLabels map[string]string
	if old != nil {
		oldLabels = old.Labels
	}
	if bad := restrictedLabelChanges(oldLabels, node.Labels); len(bad) > 0 {
		return NewForbidden(a, fmt.Errorf("is not allowed to modify labels: %s", strings.Join(bad, ", ")))
	}
	return nil
}

// restrictedLabelChanges lists the restricted labels added, changed or
// removed between old and new, sorted.
func restrictedLabelChanges(old, new map[string]string) []string {
	var bad []string
	for k, v := range new {
		if strings.HasPrefix(k, RestrictedLabelPrefix) {
			if ov, ok := old[k]; !ok || ov != v {
				bad = append(bad, k)
			}
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok && strings.HasPrefix(k, RestrictedLabelPrefix) {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return bad
}

func (p *NodeRestriction) pod(a *Attributes, nodeName string) error {
	switch a.Subresource {
	case "":
		switch a.Operation {
		case Delete:
			old, ok := a.OldObject.(*corev1.Pod)
			if !ok {
				return wrongType(a, a.OldObject)
			}
			if old.Spec.NodeName != nodeName {
				return NewForbidden(a, fmt.Errorf("node %q can only delete pods with spec.nodeName set to itself", nodeName))
			}
			return nil
		case Create:
			return NewForbidden(a, fmt.Errorf("node %q can only create mirror pods, which kubelab does not support", nodeName))
		default:
			return NewForbidden(a, fmt.Errorf("unexpected operation %q, node %q can only create and delete mirror pods", a.Operation, nodeName))
		}
	case "status":
		if a.Operation != Update {
			return NewForbidden(a, fmt.Errorf("unexpected operation %q", a.Operation))
		}
		old, ok := a.OldObject.(*corev1.Pod)
		if !ok {
			return wrongType(a, a.OldObject)
		}
		pod, ok := a.Object.(*corev1.Pod)
		if !ok {
			return wrongType(a, a.Object)
		}
		if old.Spec.NodeName != nodeName {
			return NewForbidden(a, fmt.Errorf("node %q can only update pod status for pods with spec.nodeName set to itself", nodeName))
		}
		if !equality.Semantic.DeepEqual(old.OwnerReferences, pod.OwnerReferences) {
			return NewForbidden(a, fmt.Errorf("node %q cannot update ownerReferences", nodeName))
		}
		if !equality.Semantic.DeepEqual(old.Labels, pod.Labels) || !equality.Semantic.DeepEqual(old.Annotations, pod.Annotations) {
			return NewForbidden(a, fmt.Errorf("node %q cannot update labels or annotations through pod status", nodeName))
		}
		return nil
	case "eviction":
		old, ok := a.OldObject.(*corev1.Pod)
		if !ok {
			return NewForbidden(a, fmt.Errorf("node %q can only evict pods with spec.nodeName set to itself, and the pod was not given", nodeName))
		}
		if old.Spec.NodeName != nodeName {
			return NewForbidden(a, fmt.Errorf("node %q can only evict pods with spec.nodeName set to itself", nodeName))
		}
		return nil
	default:
		return NewForbidden(a, fmt.Errorf("unexpected subresource %q", a.Subresource))
	}
}
