package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/conformance/runner"
	"github.com/kubelab/kubelab/spec"
)

// PluginInfo describes one registered plugin, as `kubelab plugins -o json`
// prints it.
type PluginInfo struct {
	// Contract is "store", "scheduler", "runtime", "proxy", or "profile"
	// for a scheduler profile (spec.Registry.RegisterProfile), whose
	// Description lists its plugins and weights.
	Contract string `json:"contract"`
	// Name is the registry name.
	Name string `json:"name"`
	// Capabilities are the optional capabilities it claims.
	Capabilities []string `json:"capabilities"`
	// Description is its one-line description.
	Description string `json:"description"`
}

// Plugins lists every plugin of reg, contract by contract (store,
// scheduler, runtime, proxy), sorted by name within each, then the
// registered scheduler profiles in registration order.
func Plugins(reg *spec.Registry) []PluginInfo {
	caps := func(cs spec.Capabilities) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = string(c)
		}
		return out
	}
	var out []PluginInfo
	for _, n := range reg.StoreNames() {
		if p, err := reg.Store(n); err == nil {
			out = append(out, PluginInfo{"store", n, caps(p.Capabilities), p.Description})
		}
	}
	for _, n := range reg.SchedulerNames() {
		if p, err := reg.Scheduler(n); err == nil {
			out = append(out, PluginInfo{"scheduler", n, []string{}, p.Description})
		}
	}
	for _, n := range reg.RuntimeNames() {
		if p, err := reg.Runtime(n); err == nil {
			out = append(out, PluginInfo{"runtime", n, caps(p.Capabilities), p.Description})
		}
	}
	for _, n := range reg.ProxyNames() {
		if p, err := reg.Proxy(n); err == nil {
			out = append(out, PluginInfo{"proxy", n, caps(p.Capabilities), p.Description})
		}
	}
	for _, p := range reg.Profiles() {
		out = append(out, PluginInfo{"profile", p.SchedulerName, []string{}, profileDescription(p)})
	}
	return out
}

// profileDescription is a profile's plugins with their weights, in order.
func profileDescription(p spec.Profile) string {
	parts := make([]string, len(p.Plugins))
	for i, wp := range p.Plugins {
		parts[i] = wp.Name
		if wp.Weight != 0 {
			parts[i] = fmt.Sprintf("%s(%d)", wp.Name, wp.Weight)
		}
	}
	return strings.Join(parts, ", ")
}

// Broken reports whether p is one of the deliberately broken plugins
// (fakes/broken*), whose names start with runner.BrokenPrefix.
func (p PluginInfo) Broken() bool { return strings.HasPrefix(p.Name, runner.BrokenPrefix) }

// withoutBroken returns infos without the broken plugins, and how many it
// left out.
func withoutBroken(infos []PluginInfo) ([]PluginInfo, int) {
	var out []PluginInfo
	for _, p := range infos {
		if !p.Broken() {
			out = append(out, p)
		}
	}
	return out, len(infos) - len(out)
}

func newPluginsCommand(reg *spec.Registry) *cobra.Command {
	var output string
	var all bool
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the registered plugins per contract, with the capabilities they claim",
		Long: `List the registered plugins per contract, with the capabilities they claim.

The deliberately broken plugins (names starting with "` + runner.BrokenPrefix + `", which the
conformance suites must catch) are registered and runnable by name, but listed
only with --all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, hidden := Plugins(reg), 0
			if !all {
				infos, hidden = withoutBroken(infos)
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if infos == nil {
					infos = []PluginInfo{}
				}
				return enc.Encode(infos)
			case "text", "":
				if err := writePlugins(cmd.OutOrStdout(), infos); err != nil {
					return err
				}
				if hidden > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "\n(%d deliberately broken %s* plugins not shown: --all lists them)\n", hidden, runner.BrokenPrefix)
				}
				return nil
			}
			return fmt.Errorf("--output %q: want text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&all, "all", false, "also list the deliberately broken plugins ("+runner.BrokenPrefix+"*)")
	return cmd
}

func writePlugins(w io.Writer, infos []PluginInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, contract := range []string{"store", "scheduler", "runtime", "proxy", "profile"} {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		if contract == "profile" {
			fmt.Fprintf(tw, "scheduler profiles (plugin(weight), in order):\n")
		} else {
			fmt.Fprintf(tw, "%s plugins:\n", contract)
		}
		n := 0
		for _, p := range infos {
			if p.Contract != contract {
				continue
			}
			n++
			capabilities := strings.Join(p.Capabilities, ", ")
			if capabilities == "" {
				capabilities = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Name, capabilities, p.Description)
		}
		if n == 0 {
			fmt.Fprintf(tw, "  (none)\n")
		}
	}
	return tw.Flush()
}
