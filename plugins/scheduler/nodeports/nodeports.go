// Package nodeports is the NodePorts scheduler plugin: a pod asking for a
// host port fits only nodes where no pod holds a conflicting one.
package nodeports

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// NodePorts implements these extension points (checked at compile time).
var (
	_ spec.PreFilterPlugin = NodePorts{}
	_ spec.FilterPlugin    = NodePorts{}
)

// Name is the plugin's registry name, as upstream.
const Name = "NodePorts"

// ErrReason is the Filter's reason, as upstream.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

const stateKey = "PreFilter" + Name

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Filter: the pod's host ports must be free on the node", New: New}
}

// NodePorts implements spec.PreFilterPlugin and spec.FilterPlugin.
type NodePorts struct{}

// New builds the plugin; it takes no args.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return NodePorts{}, nil
}

// Name implements spec.Named.
func (NodePorts) Name() string { return Name }

// wantPort is one host port the pod asks for, precomputed for Filter.
type wantPort struct {
	key      string // protocol/hostIP/port
	wildcard bool   // hostIP is 0.0.0.0
	anyIP    string // protocol/0.0.0.0/port
	prefix   string // protocol/
	suffix   string // /port
}

// PreFilter collects the pod's host ports; a pod without any skips Filter.
func (NodePorts) PreFilter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, _ spec.Snapshot) *spec.Status {
	keys := spec.PodHostPorts(pod)
	if len(keys) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	want := make([]wantPort, 0, len(keys))
	for _, k := range keys {
		parts := strings.SplitN(k, "/", 3)
		w := wantPort{key: k, wildcard: parts[1] == "0.0.0.0", prefix: parts[0] + "/", suffix: "/" + parts[2]}
		w.anyIP = parts[0] + "/0.0.0.0/" + parts[2]
		want = append(want, w)
	}
	state.Write(stateKey, want)
	return nil
}

// Filter rejects, as Unschedulable, a node where a wanted host port is
// taken: same protocol and port, and the same host IP or either side
// bound to 0.0.0.0.
func (NodePorts) Filter(_ context.Context, state *spec.CycleState, pod *corev1.Pod, node *spec.NodeInfo) *spec.Status {
	v, err := state.Read(stateKey)
	if err != nil {
		return spec.AsStatus(err)
	}
	if len(node.UsedPorts) == 0 {
		return nil
	}
	for _, w := range v.([]wantPort) {
		if conflicts(w, node.UsedPorts) {
			return spec.NewStatus(spec.Unschedulable, ErrReason)
		}
	}
	return nil
}

func conflicts(w wantPort, used map[string]bool) bool {
	if used[w.key] || used[w.anyIP] {
		return true
	}
	if !w.wildcard {
		return false
	}
	for k, in := range used {
		if in && strings.HasPrefix(k, w.prefix) && strings.HasSuffix(k, w.suffix) {
			return true
		}
	}
	return false
}
