package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelab/kubelab/reference/scheduler"
)

// ExplainOptions are the settings of `kubelab explain pod`.
type ExplainOptions struct {
	// Namespace of the pod.
	Namespace string
	// SchedulerURL is the scheduler's HTTP endpoint (its --listen).
	SchedulerURL string
	// FromAnnotation reads the pod's explanation annotation through the
	// API (Kubeconfig) instead of asking the scheduler.
	FromAnnotation bool
	// Kubeconfig for FromAnnotation.
	Kubeconfig string
	// JSON prints the explanation as JSON.
	JSON bool
}

// FetchExplanation gets a pod's explanation from the scheduler's
// /explain endpoint or, with FromAnnotation, from the pod's annotation.
func FetchExplanation(ctx context.Context, name string, opts ExplainOptions) (*scheduler.Explanation, error) {
	var x scheduler.Explanation
	if opts.FromAnnotation {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		pod, err := cs.CoreV1().Pods(opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		v, ok := pod.Annotations[scheduler.ExplanationAnnotation]
		if !ok {
			return nil, fmt.Errorf("pod %s/%s has no %s annotation (run the scheduler with --explain-annotation)", opts.Namespace, name, scheduler.ExplanationAnnotation)
		}
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", scheduler.ExplanationAnnotation, err)
		}
		return &x, nil
	}
	base := strings.TrimRight(opts.SchedulerURL, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := base + "/explain/" + url.PathEscape(opts.Namespace) + "/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the scheduler (is it running with --explain and --listen %s?): %w", opts.SchedulerURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("scheduler: %s", e.Error)
		}
		return nil, fmt.Errorf("scheduler: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &x); err != nil {
		return nil, fmt.Errorf("scheduler reply: %w", err)
	}
	return &x, nil
}

// RenderExplanation writes x as a header and a table: node, verdict,
// rejecting plugin and reason, each plugin's weighted score, total, chosen.
func RenderExplanation(w io.Writer, x *scheduler.Explanation) error {
	fprintf(w, "Pod:        %s/%s\n", x.Namespace, x.Name)
	fprintf(w, "Scheduler:  %s (attempt %d, %s)\n", x.SchedulerName, x.Attempt, x.Time.Format(time.RFC3339))
	fprintf(w, "Result:     %s", x.Result)
	if x.Node != "" {
		fprintf(w, " on %s", x.Node)
	}
	fprintf(w, "\n")
	if x.Message != "" {
		fprintf(w, "Message:    %s\n", x.Message)
	}
	fprintf(w, "Nodes:      %d evaluated of %d", len(x.Nodes), x.NodesTotal)
	if x.Truncated {
		fprintf(w, " (truncated to fit the annotation)")
	}
	fprintf(w, "\n\n")
	plugins := map[string]bool{}
	for _, n := range x.Nodes {
		for p := range n.Scores {
			plugins[p] = true
		}
	}
	cols := make([]string, 0, len(plugins))
	for p := range plugins {
		cols = append(cols, p)
	}
	sort.Strings(cols)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := append([]string{"NODE", "VERDICT", "REASON"}, cols...)
	head = append(head, "TOTAL", "CHOSEN")
	fprintf(tw, "%s\n", strings.Join(head, "\t"))
	for _, n := range x.Nodes {
		reason := n.Reason
		if n.Plugin != "" {
			reason = n.Plugin + ": " + reason
		}
		if reason == "" {
			reason = "-"
		}
		row := []string{n.Node, n.Verdict, reason}
		for _, p := range cols {
			if v, ok := n.Scores[p]; ok {
				row = append(row, strconv.FormatInt(v, 10))
			} else {
				row = append(row, "-")
			}
		}
		total, chosen := "-", ""
		if n.Verdict == "Feasible" {
			total = strconv.FormatInt(n.Total, 10)
		}
		if n.Chosen {
			chosen = "*"
		}
		row = append(row, total, chosen)
		fprintf(tw, "%s\n", strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func newExplainCommand() *cobra.Command {
	explain := &cobra.Command{
		Use:   "explain",
		Short: "Explain kubelab's decisions",
	}
	opts := ExplainOptions{}
	pod := &cobra.Command{
		Use:   "pod NAME",
		Short: "Why a pod went where it went: per-node filter verdicts and per-plugin scores",
		Long: `Show the last scheduling attempt of a pod as kubelab's scheduler recorded it
(run it with --explain): the verdict of every node it looked at (Feasible,
or the plugin and reason that rejected it), each plugin's weighted score of
the feasible nodes, their totals and the chosen node.

  kubelab explain pod web-1 -n default --scheduler-url http://127.0.0.1:10259
  kubelab explain pod web-1 --from-annotation --kubeconfig ~/.kube/kubelab`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := FetchExplanation(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if opts.JSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(x)
			}
			return RenderExplanation(cmd.OutOrStdout(), x)
		},
	}
	f := pod.Flags()
	f.StringVarP(&opts.Namespace, "namespace", "n", "default", "the pod's namespace")
	f.StringVar(&opts.SchedulerURL, "scheduler-url", "http://127.0.0.1:10259", "the scheduler's HTTP endpoint (its --listen)")
	f.BoolVar(&opts.FromAnnotation, "from-annotation", false, "read the pod's "+scheduler.ExplanationAnnotation+" annotation through the API instead")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig for --from-annotation")
	f.BoolVar(&opts.JSON, "json", false, "print the explanation as JSON")
	explain.AddCommand(pod)
	return explain
}
