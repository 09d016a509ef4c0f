package scheduler

import (
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelab/kubelab/spec"
)

// nodeItem is one node of the cache. info is changed in place under the
// cache's lock; snapshots hold clones.
type nodeItem struct {
	info *spec.NodeInfo
}

// podState is a pod the cache counts on a node.
type podState struct {
	pod *corev1.Pod
	// assumed: the scheduler chose the node and the API has not confirmed
	// the binding yet.
	assumed bool
	// bindingFinished and deadline: once the binding call returned, an
	// assumed pod the informer never confirms expires at deadline.
	bindingFinished bool
	deadline        time.Time
}

// cache is the scheduler's view of nodes and the pods on them, including
// assumed pods whose binding is in flight.
type cache struct {
	mu    sync.Mutex
	ttl   time.Duration
	nodes map[string]*nodeItem
	pods  map[types.UID]*podState
	// dirty lists the nodes changed since the last snapshot update;
	// listChanged says the set of nodes changed.
	dirty       map[string]bool
	listChanged bool
}

func newCache(ttl time.Duration) *cache {
	return &cache{ttl: ttl, nodes: map[string]*nodeItem{}, pods: map[types.UID]*podState{}, dirty: map[string]bool{}}
}

// item returns the node item for name, creating a node-less one (for pods
// seen before their node) when missing. Call with mu held.
func (c *cache) item(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{info: spec.NewNodeInfo(nil)}
		c.nodes[name] = it
	}
	return it
}

func (c *cache) addPodLocked(pod *corev1.Pod) {
	c.item(pod.Spec.NodeName).info.AddPod(pod)
	c.dirty[pod.Spec.NodeName] = true
}

func (c *cache) removePodLocked(pod *corev1.Pod) {
	it, ok := c.nodes[pod.Spec.NodeName]
	if !ok {
		return
	}
	_ = it.info.RemovePod(pod)
	c.dirty[pod.Spec.NodeName] = true
	if it.info.Node == nil && len(it.info.Pods) == 0 {
		delete(c.nodes, pod.Spec.NodeName)
	}
}

// AssumePod counts pod (with spec.nodeName set) on its node before the API
// confirms the binding.
func (c *cache) AssumePod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pod.UID]; ok {
		return fmt.Errorf("pod %s/%s is already in the cache", pod.Namespace, pod.Name)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod, assumed: true}
	return nil
}

// FinishBinding starts the expiry clock of an assumed pod.
func (c *cache) FinishBinding(pod *corev1.Pod, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok && ps.assumed {
		ps.bindingFinished = true
		ps.deadline = now.Add(c.ttl)
	}
}

// ForgetPod uncounts an assumed pod whose binding failed.
func (c *cache) ForgetPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok || !ps.assumed {
		return
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *cache) IsAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[uid]
	return ok && ps.assumed
}

// AddPod records an assigned pod seen by the informer, confirming an
// assumed one.
func (c *cache) AddPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok {
		c.removePodLocked(ps.pod)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod}
}

// UpdatePod replaces an assigned pod.
func (c *cache) UpdatePod(pod *corev1.Pod) { c.AddPod(pod) }

// RemovePod uncounts an assigned pod.
func (c *cache) RemovePod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok {
		return
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
}

// AddNode records or replaces a node.
func (c *cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if !ok || it.info.Node == nil {
		c.listChanged = true
	}
	if !ok {
		c.nodes[node.Name] = &nodeItem{info: spec.NewNodeInfo(node)}
	} else {
		pods := it.info.Pods
		it.info = spec.NewNodeInfo(node, pods...)
	}
	c.dirty[node.Name] = true
}

// UpdateNode records a changed node. A change that cannot matter to
// scheduling (relevant false: heartbeats, status timestamps) only swaps
// the Node object and leaves the snapshot alone; an unchanged allocatable
// keeps the node's pod accounting.
func (c *cache) UpdateNode(node *corev1.Node, relevant bool) {
	c.mu.Lock()
	it, ok := c.nodes[node.Name]
	if !ok || it.info.Node == nil || !equality.Semantic.DeepEqual(it.info.Node.Status.Allocatable, node.Status.Allocatable) {
		c.mu.Unlock()
		c.AddNode(node)
		return
	}
	defer c.mu.Unlock()
	it.info.Node = node
	if relevant {
		c.dirty[node.Name] = true
	}
}

// RemoveNode forgets a node; pods still on it stay counted on a node-less
// item until they are deleted.
func (c *cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[name]
	if !ok {
		return
	}
	c.listChanged = true
	if len(it.info.Pods) == 0 {
		delete(c.nodes, name)
	} else {
		it.info = spec.NewNodeInfo(nil, it.info.Pods...)
	}
	c.dirty[name] = true
}

// HasNode reports whether the node exists.
func (c *cache) HasNode(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[name]
	return ok && it.info.Node != nil
}

// NodeCount is the number of nodes.
func (c *cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, it := range c.nodes {
		if it.info.Node != nil {
			n++
		}
	}
	return n
}

// Cleanup expires assumed pods whose binding finished before now minus the
// TTL without the informer confirming them; it returns them.
func (c *cache) Cleanup(now time.Time) []*corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*corev1.Pod
	for uid, ps := range c.pods {
		if ps.assumed && ps.bindingFinished && now.After(ps.deadline) {
			c.removePodLocked(ps.pod)
			delete(c.pods, uid)
			out = append(out, ps.pod)
		}
	}
	return out
}

// snapshot is the spec.Snapshot the scheduling loop decides on. It is
// updated incrementally between cycles (only changed nodes are cloned) and
// never while a cycle runs.
type snapshot struct {
	nodes  []*spec.NodeInfo
	byName map[string]int
	// namespaces, when set, gives the namespaces' labels
	// (spec.NamespaceLabeler, for namespaceSelector in affinity terms).
	namespaces func(name string) (map[string]string, bool)
}

// NamespaceLabels returns a namespace's labels from the informer.
func (s *snapshot) NamespaceLabels(name string) (map[string]string, bool) {
	if s.namespaces == nil {
		return nil, false
	}
	return s.namespaces(name)
}

var _ spec.NamespaceLabeler = (*snapshot)(nil)

func newSnapshot() *snapshot { return &snapshot{byName: map[string]int{}} }

// Nodes lists the nodes in name order.
func (s *snapshot) Nodes() []*spec.NodeInfo { return s.nodes }

// Get returns one node's info.
func (s *snapshot) Get(name string) (*spec.NodeInfo, error) {
	i, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("node %q: %w", name, spec.ErrNotFound)
	}
	return s.nodes[i], nil
}

// UpdateSnapshot brings s up to date with the cache, cloning only the
// nodes that changed since the previous update.
func (c *cache) UpdateSnapshot(s *snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listChanged || len(s.nodes) == 0 && len(c.nodes) > 0 {
		names := make([]string, 0, len(c.nodes))
		for name, it := range c.nodes {
			if it.info.Node != nil {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		old := s.byName
		oldNodes := s.nodes
		s.nodes = make([]*spec.NodeInfo, len(names))
		s.byName = make(map[string]int, len(names))
		for i, name := range names {
			s.byName[name] = i
			if j, ok := old[name]; ok && !c.dirty[name] {
				s.nodes[i] = oldNodes[j]
			} else {
				s.nodes[i] = c.nodes[name].info.Clone()
			}
		}
		c.listChanged = false
	} else {
		for name := range c.dirty {
			i, ok := s.byName[name]
			if !ok {
				continue
			}
			if it, ok := c.nodes[name]; ok && it.info.Node != nil {
				s.nodes[i] = it.info.Clone()
			}
		}
	}
	clear(c.dirty)
}
