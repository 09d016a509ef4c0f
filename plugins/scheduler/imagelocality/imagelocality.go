// Package imagelocality is the ImageLocality scheduler plugin: it prefers
// nodes that already have the pod's container images (node.status.images),
// weighing each image by its size and by how many nodes have it, so that a
// pod is not drawn to the one node that happens to hold a rare image.
package imagelocality

import (
	"context"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// ImageLocality implements these extension points (checked at compile time).
var (
	_ spec.PreScorePlugin = (*ImageLocality)(nil)
	_ spec.ScorePlugin    = (*ImageLocality)(nil)
)

// Name is the plugin's registry name, as upstream.
const Name = "ImageLocality"

// Thresholds of the score, as upstream: image bytes below minThreshold
// score 0; maxContainerThreshold per container scores MaxNodeScore.
const (
	mb                    int64 = 1024 * 1024
	minThreshold          int64 = 23 * mb
	maxContainerThreshold int64 = 1000 * mb
)

const preScoreKey = "PreScore" + Name

// Plugin returns the registry entry.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "Score: nodes that already have the pod's images (by size and spread)", New: New}
}

// ImageLocality implements spec.PreScorePlugin and spec.ScorePlugin.
type ImageLocality struct{ h spec.SchedulerHandle }

// New builds the plugin; it takes no args. The handle's snapshot gives the
// number of nodes holding each image; without a handle the feasible nodes
// are counted.
func New(args map[string]string, h spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args); err != nil {
		return nil, err
	}
	return &ImageLocality{h: h}, nil
}

// Name implements spec.Named.
func (*ImageLocality) Name() string { return Name }

// NormalizedImageName adds ":latest" to an image reference without a tag
// or digest, as upstream compares names.
func NormalizedImageName(name string) string {
	if strings.LastIndex(name, ":") <= strings.LastIndex(name, "/") {
		name += ":latest"
	}
	return name
}

// preScore is PreScore's precomputation.
type preScore struct {
	images   []string         // the pod's images, one per container (and image volume)
	numNodes map[string]int64 // image → nodes having it
	total    int64            // nodes in the snapshot
}

func podImages(pod *corev1.Pod) []string {
	var out []string
	for _, c := range pod.Spec.InitContainers {
		out = append(out, NormalizedImageName(c.Image))
	}
	for _, c := range pod.Spec.Containers {
		out = append(out, NormalizedImageName(c.Image))
	}
	for _, v := range pod.Spec.Volumes {
		if v.Image != nil {
			out = append(out, NormalizedImageName(v.Image.Reference))
		}
	}
	return out
}

// nodeHas calls fn for each of the node's images whose name is in want,
// with the image's size, once per image name.
func nodeHas(node *corev1.Node, want map[string]*atomic.Int64, fn func(name string, size int64)) {
	for i := range node.Status.Images {
		img := &node.Status.Images[i]
		for _, n := range img.Names {
			n = NormalizedImageName(n)
			if _, ok := want[n]; ok {
				fn(n, img.SizeBytes)
			}
		}
	}
}

// PreScore counts, for each of the pod's images, the nodes that have it.
// It skips scoring when no feasible node has any.
func (pl *ImageLocality) PreScore(_ context.Context, state *spec.CycleState, pod *corev1.Pod, nodes []*spec.NodeInfo) *spec.Status {
	images := podImages(pod)
	if len(images) == 0 {
		return spec.NewStatus(spec.Skip)
	}
	counters := map[string]*atomic.Int64{}
	for _, img := range images {
		counters[img] = &atomic.Int64{}
	}
	// Only a feasible node holding one of the images can score above 0:
	// without one, skip before counting over the whole cluster.
	found := false
	for _, ni := range nodes {
		if ni.Node != nil && len(ni.Node.Status.Images) > 0 {
			nodeHas(ni.Node, counters, func(string, int64) { found = true })
			if found {
				break
			}
		}
	}
	if !found {
		return spec.NewStatus(spec.Skip)
	}
	all := nodes
	if pl.h != nil {
		if snap := pl.h.Snapshot(); snap != nil {
			all = snap.Nodes()
		}
	}
	pluginhelper.Chunks(len(all), func(_, lo, hi int) {
		seen := map[string]bool{}
		for _, ni := range all[lo:hi] {
			if ni.Node == nil || len(ni.Node.Status.Images) == 0 {
				continue
			}
			clear(seen)
			nodeHas(ni.Node, counters, func(name string, _ int64) {
				if !seen[name] {
					seen[name] = true
					counters[name].Add(1)
				}
			})
		}
	})
	s := &preScore{images: images, numNodes: map[string]int64{}, total: int64(len(all))}
	for name, c := range counters {
		if n := c.Load(); n > 0 {
			s.numNodes[name] = n
		}
	}
	if len(s.numNodes) == 0 || s.total == 0 {
		return spec.NewStatus(spec.Skip)
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score sums, over the pod's containers whose image the node has, the
// image size scaled by the fraction of nodes having it, and maps the sum
// from [23MB, 1000MB × containers] onto 0..MaxNodeScore, as upstream.
func (pl *ImageLocality) Score(_ context.Context, state *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	v, err := state.Read(preScoreKey)
	if err != nil {
		return 0, spec.AsStatus(err)
	}
	s := v.(*preScore)
	if node.Node == nil || len(node.Node.Status.Images) == 0 {
		return priority(0, len(s.images)), nil
	}
	sizes := map[string]int64{}
	for i := range node.Node.Status.Images {
		img := &node.Node.Status.Images[i]
		for _, n := range img.Names {
			n = NormalizedImageName(n)
			if _, ok := s.numNodes[n]; ok {
				sizes[n] = img.SizeBytes
			}
		}
	}
	var sum int64
	for _, img := range s.images {
		if size, ok := sizes[img]; ok {
			sum += int64(float64(size) * float64(s.numNodes[img]) / float64(s.total))
		}
	}
	return priority(sum, len(s.images)), nil
}

func priority(sum int64, containers int) int64 {
	maxThreshold := maxContainerThreshold * int64(containers)
	sum = max(sum, minThreshold)
	sum = min(sum, maxThreshold)
	return spec.MaxNodeScore * (sum - minThreshold) / (maxThreshold - minThreshold)
}

// NormalizeScore leaves the scores, already in 0..MaxNodeScore.
func (*ImageLocality) NormalizeScore(context.Context, *spec.CycleState, *corev1.Pod, []spec.NodeScore) *spec.Status {
	return nil
}
