package scheduler

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/kubelab/kubelab/spec"
)

// FileConfig is the scheduler's configuration file (YAML or JSON), in the
// spirit of the kube-scheduler's KubeSchedulerConfiguration but with
// kubelab's profile shape (plugins listed once, in order, with weights and
// string args). See testdata/config.yaml for an example:
//
//	percentageOfNodesToScore: 0        # 0: adaptive (50% - nodes/125, ≥ 5%, ≥ 100 nodes)
//	podInitialBackoff: 1s
//	podMaxBackoff: 10s
//	profiles:
//	- schedulerName: default-scheduler
//	  from: default-scheduler          # start from a built-in profile (optional)
//	- schedulerName: my-scheduler
//	  percentageOfNodesToScore: 50
//	  plugins:
//	  - name: NodeResourcesFit
//	    weight: 1
//	    args: {scoringStrategy: MostAllocated}
//	extenders:
//	- urlPrefix: http://127.0.0.1:8888
//	  filterVerb: filter
//	  prioritizeVerb: prioritize
//	  weight: 1
//	  ignorable: true
//	  httpTimeout: 2s
type FileConfig struct {
	// PercentageOfNodesToScore is the default for profiles that set none.
	PercentageOfNodesToScore int32 `json:"percentageOfNodesToScore,omitempty"`
	// PodInitialBackoff and PodMaxBackoff bound the per-pod backoff.
	PodInitialBackoff Duration `json:"podInitialBackoff,omitempty"`
	PodMaxBackoff     Duration `json:"podMaxBackoff,omitempty"`
	// Profiles are the scheduler names to serve.
	Profiles []FileProfile `json:"profiles"`
	// Extenders are HTTP scheduler extenders.
	Extenders []ExtenderConfig `json:"extenders,omitempty"`
}

// FileProfile is one profile of a FileConfig.
type FileProfile struct {
	// SchedulerName is matched against pods' spec.schedulerName.
	SchedulerName string `json:"schedulerName"`
	// From names a built-in profile whose plugins this one starts with
	// (Plugins then replace same-named entries and append new ones).
	From string `json:"from,omitempty"`
	// PercentageOfNodesToScore overrides the file's.
	PercentageOfNodesToScore int32 `json:"percentageOfNodesToScore,omitempty"`
	// Plugins are the profile's plugins, in order.
	Plugins []FilePlugin `json:"plugins,omitempty"`
	// Disabled removes plugins (by name) inherited with From.
	Disabled []string `json:"disabled,omitempty"`
}

// FilePlugin is one plugin of a FileProfile.
type FilePlugin struct {
	// Name is the plugin's registry name.
	Name string `json:"name"`
	// Weight multiplies its normalized score (default 1).
	Weight int64 `json:"weight,omitempty"`
	// Args are the plugin's settings.
	Args map[string]string `json:"args,omitempty"`
}

// LoadFileConfig reads and strictly parses a configuration file: an
// unknown field is an error.
func LoadFileConfig(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFileConfig(data)
}

// ParseFileConfig strictly parses a configuration (YAML or JSON).
func ParseFileConfig(data []byte) (*FileConfig, error) {
	var fc FileConfig
	if err := yaml.UnmarshalStrict(data, &fc); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	if len(fc.Profiles) == 0 {
		return nil, fmt.Errorf("scheduler config: no profiles: %w", spec.ErrInvalid)
	}
	return &fc, nil
}

// ResolveProfiles turns the file's profiles into spec.Profiles; builtin
// looks up the built-in profiles named by From.
func (fc *FileConfig) ResolveProfiles(builtin func(name string) (spec.Profile, bool)) ([]spec.Profile, error) {
	var out []spec.Profile
	for _, fp := range fc.Profiles {
		if fp.SchedulerName == "" {
			return nil, fmt.Errorf("scheduler config: a profile has no schedulerName: %w", spec.ErrInvalid)
		}
		p := spec.Profile{SchedulerName: fp.SchedulerName, PercentageOfNodesToScore: fp.PercentageOfNodesToScore}
		if fp.From != "" {
			var base spec.Profile
			ok := false
			if builtin != nil {
				base, ok = builtin(fp.From)
			}
			if !ok {
				return nil, fmt.Errorf("scheduler config: profile %q: unknown built-in profile %q: %w", fp.SchedulerName, fp.From, spec.ErrNotFound)
			}
			p.Plugins = append(p.Plugins, base.Plugins...)
			if p.PercentageOfNodesToScore == 0 {
				p.PercentageOfNodesToScore = base.PercentageOfNodesToScore
			}
		}
		for _, d := range fp.Disabled {
			found := false
			for i, wp := range p.Plugins {
				if wp.Name == d {
					p.Plugins = append(p.Plugins[:i:i], p.Plugins[i+1:]...)
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("scheduler config: profile %q disables %q, which it does not have: %w", fp.SchedulerName, d, spec.ErrInvalid)
			}
		}
		for _, pl := range fp.Plugins {
			if pl.Name == "" {
				return nil, fmt.Errorf("scheduler config: profile %q: a plugin has no name: %w", fp.SchedulerName, spec.ErrInvalid)
			}
			wp := spec.WeightedPlugin{Name: pl.Name, Weight: pl.Weight, Args: pl.Args}
			replaced := false
			for i := range p.Plugins {
				if p.Plugins[i].Name == pl.Name {
					p.Plugins[i], replaced = wp, true
				}
			}
			if !replaced {
				p.Plugins = append(p.Plugins, wp)
			}
		}
		if p.PercentageOfNodesToScore == 0 {
			p.PercentageOfNodesToScore = fc.PercentageOfNodesToScore
		}
		out = append(out, p)
	}
	return out, nil
}

// Apply copies the file's settings other than profiles into cfg.
func (fc *FileConfig) Apply(cfg *Config) {
	cfg.PercentageOfNodesToScore = fc.PercentageOfNodesToScore
	cfg.PodInitialBackoff = fc.PodInitialBackoff.Duration
	cfg.PodMaxBackoff = fc.PodMaxBackoff.Duration
	cfg.Extenders = append(cfg.Extenders, fc.Extenders...)
}
