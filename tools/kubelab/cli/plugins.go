package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kubelab/kubelab/spec"
)

// PluginInfo describes one registered plugin, as `kubelab plugins -o json`
// prints it.
type PluginInfo struct {
	// Contract is "store", "scheduler", "runtime" or "proxy".
	Contract string `json:"contract"`
	// Name is the registry name.
	Name string `json:"name"`
	// Capabilities are the optional capabilities it claims.
	Capabilities []string `json:"capabilities"`
	// Description is its one-line description.
	Description string `json:"description"`
}

// Plugins lists every plugin of reg, contract by contract (store,
// scheduler, runtime, proxy), sorted by name within each.
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
	return out
}

func newPluginsCommand(reg *spec.Registry) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the registered plugins per contract, with the capabilities they claim",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos := Plugins(reg)
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if infos == nil {
					infos = []PluginInfo{}
				}
				return enc.Encode(infos)
			case "text", "":
				return writePlugins(cmd.OutOrStdout(), infos)
			}
			return fmt.Errorf("--output %q: want text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writePlugins(w io.Writer, infos []PluginInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, contract := range []string{"store", "scheduler", "runtime", "proxy"} {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s plugins:\n", contract)
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
