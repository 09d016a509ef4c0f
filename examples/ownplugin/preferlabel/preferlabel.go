// Package preferlabel is the example scheduler plugin of README.md's
// "Writing and testing your own plugin": a Score plugin that prefers nodes
// carrying a label (args: label=KEY, default "example.com/preferred"),
// scoring MaxNodeScore for a node whose label value is "true" and 0
// otherwise. It uses kubelab's public plugin-author toolkit
// (plugins/scheduler/pluginhelper) for its argument check and score
// normalisation, as kubelab's own plugins do.
package preferlabel

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/pluginhelper"
	"github.com/kubelab/kubelab/spec"
)

// Name is the plugin's registry name.
const Name = "PreferLabel"

// ArgLabel is the arg naming the node label the plugin looks for.
const ArgLabel = "label"

// DefaultLabel is the label looked for without ArgLabel.
const DefaultLabel = "example.com/preferred"

// Plugin returns the registration.
func Plugin() spec.SchedulerPlugin {
	return spec.SchedulerPlugin{Name: Name, Description: "example: prefer nodes labelled KEY=true", New: New}
}

// PreferLabel is the plugin.
type PreferLabel struct {
	label string
}

var _ spec.ScorePlugin = (*PreferLabel)(nil)

// New builds the plugin from its args; an unknown arg wraps spec.ErrInvalid.
func New(args map[string]string, _ spec.SchedulerHandle) (spec.Named, error) {
	if err := pluginhelper.CheckArgs(Name, args, ArgLabel); err != nil {
		return nil, err
	}
	l := DefaultLabel
	if v, ok := args[ArgLabel]; ok {
		l = v
	}
	return &PreferLabel{label: l}, nil
}

// Name implements spec.Named.
func (*PreferLabel) Name() string { return Name }

// Score implements spec.ScorePlugin: 1 for a node labelled true, else 0.
func (p *PreferLabel) Score(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, node *spec.NodeInfo) (int64, *spec.Status) {
	if node.Node != nil && node.Node.Labels[p.label] == "true" {
		return 1, nil
	}
	return 0, nil
}

// NormalizeScore implements spec.ScorePlugin: the preferred nodes get
// MaxNodeScore, the others 0.
func (p *PreferLabel) NormalizeScore(_ context.Context, _ *spec.CycleState, _ *corev1.Pod, scores []spec.NodeScore) *spec.Status {
	pluginhelper.DefaultNormalizeScore(spec.MaxNodeScore, false, scores)
	return nil
}
