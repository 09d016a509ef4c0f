package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/kubelab/kubelab/spec"
)

// DefaultExtenderTimeout is an extender call's timeout when HTTPTimeout is
// unset (the kube-scheduler's).
const DefaultExtenderTimeout = 5 * time.Second

// maxExtenderReply bounds an extender's reply body.
const maxExtenderReply = 64 << 20

// ExtenderConfig is one HTTP scheduler extender, with the fields of the
// kube-scheduler's KubeSchedulerConfiguration extenders. It speaks the
// k8s.io/kube-scheduler/extender/v1 types, so existing extenders work
// unchanged.
type ExtenderConfig struct {
	// URLPrefix is the extender's base URL, e.g. http://127.0.0.1:8888/scheduler.
	URLPrefix string `json:"urlPrefix"`
	// FilterVerb, PrioritizeVerb and BindVerb are the paths under URLPrefix
	// of the calls the extender supports (empty: not supported).
	FilterVerb     string `json:"filterVerb,omitempty"`
	PrioritizeVerb string `json:"prioritizeVerb,omitempty"`
	BindVerb       string `json:"bindVerb,omitempty"`
	// PreemptVerb is accepted for compatibility and not called.
	PreemptVerb string `json:"preemptVerb,omitempty"`
	// Weight multiplies the extender's priorities (0..10, scaled ×10 to
	// the plugins' 0..100); it must be positive when PrioritizeVerb is set.
	Weight int64 `json:"weight,omitempty"`
	// EnableHTTPS is accepted for compatibility; the scheme comes from
	// URLPrefix.
	EnableHTTPS bool `json:"enableHTTPS,omitempty"`
	// HTTPTimeout bounds each call (default DefaultExtenderTimeout).
	HTTPTimeout Duration `json:"httpTimeout,omitempty"`
	// NodeCacheCapable: the extender caches nodes, so only node names are
	// sent and read back.
	NodeCacheCapable bool `json:"nodeCacheCapable,omitempty"`
	// ManagedResources: when set, the extender is called only for pods
	// requesting one of these resources.
	ManagedResources []ManagedResource `json:"managedResources,omitempty"`
	// Ignorable: when the extender fails or times out, scheduling goes on
	// without it instead of failing the attempt.
	Ignorable bool `json:"ignorable,omitempty"`
}

// ManagedResource is an extended resource an extender manages.
type ManagedResource struct {
	// Name is the resource name.
	Name string `json:"name"`
	// IgnoredByScheduler is accepted for compatibility.
	IgnoredByScheduler bool `json:"ignoredByScheduler,omitempty"`
}

// Duration is a time.Duration that reads "5s" (or a number of
// nanoseconds) from JSON and YAML.
type Duration struct{ time.Duration }

// UnmarshalJSON reads "5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		d.Duration = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"5s\"", string(b))
	}
	d.Duration = time.Duration(n)
	return nil
}

// MarshalJSON writes "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// extender is a configured extender.
type extender struct {
	cfg    ExtenderConfig
	name   string
	client *http.Client
	s      *Scheduler
}

func newExtender(s *Scheduler, cfg ExtenderConfig) (*extender, error) {
	if cfg.URLPrefix == "" {
		return nil, fmt.Errorf("extender without urlPrefix: %w", spec.ErrInvalid)
	}
	if !strings.HasPrefix(cfg.URLPrefix, "http://") && !strings.HasPrefix(cfg.URLPrefix, "https://") {
		return nil, fmt.Errorf("extender urlPrefix %q is not an http(s) URL: %w", cfg.URLPrefix, spec.ErrInvalid)
	}
	if cfg.PrioritizeVerb != "" && cfg.Weight <= 0 {
		return nil, fmt.Errorf("extender %s: weight must be positive when prioritizeVerb is set, got %d: %w", cfg.URLPrefix, cfg.Weight, spec.ErrInvalid)
	}
	if cfg.HTTPTimeout.Duration < 0 {
		return nil, fmt.Errorf("extender %s: negative httpTimeout: %w", cfg.URLPrefix, spec.ErrInvalid)
	}
	t := cfg.HTTPTimeout.Duration
	if t == 0 {
		t = DefaultExtenderTimeout
	}
	return &extender{cfg: cfg, name: "extender " + cfg.URLPrefix, s: s, client: &http.Client{Timeout: t}}, nil
}

// interested reports whether the extender wants this pod: always without
// managed resources, else when a container requests or limits one.
func (e *extender) interested(pod *corev1.Pod) bool {
	if len(e.cfg.ManagedResources) == 0 {
		return true
	}
	has := func(cs []corev1.Container) bool {
		for _, c := range cs {
			for _, r := range e.cfg.ManagedResources {
				if _, ok := c.Resources.Requests[corev1.ResourceName(r.Name)]; ok {
					return true
				}
				if _, ok := c.Resources.Limits[corev1.ResourceName(r.Name)]; ok {
					return true
				}
			}
		}
		return false
	}
	return has(pod.Spec.Containers) || has(pod.Spec.InitContainers)
}

// call POSTs args as JSON to URLPrefix/verb and decodes the reply into out.
func (e *extender) call(ctx context.Context, verb string, args, out any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	url := strings.TrimRight(e.cfg.URLPrefix, "/") + "/" + strings.TrimLeft(verb, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxExtenderReply))
	if err != nil {
		return fmt.Errorf("%s: reading the reply: %w", verb, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", verb, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: malformed reply: %w", verb, err)
	}
	return nil
}

// filter asks the extender which of nodes fit pod.
func (e *extender) filter(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) (fit []*spec.NodeInfo, failed, unresolvable map[string]string, err error) {
	args := extenderv1.ExtenderArgs{Pod: pod}
	if e.cfg.NodeCacheCapable {
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = n.Name()
		}
		args.NodeNames = &names
	} else {
		list := &corev1.NodeList{Items: make([]corev1.Node, len(nodes))}
		for i, n := range nodes {
			list.Items[i] = *n.Node
		}
		args.Nodes = list
	}
	var res extenderv1.ExtenderFilterResult
	if err := e.call(ctx, e.cfg.FilterVerb, &args, &res); err != nil {
		return nil, nil, nil, err
	}
	if res.Error != "" {
		return nil, nil, nil, fmt.Errorf("%s: %s", e.cfg.FilterVerb, res.Error)
	}
	var names []string
	switch {
	case e.cfg.NodeCacheCapable && res.NodeNames != nil:
		names = *res.NodeNames
	case res.Nodes != nil:
		for _, n := range res.Nodes.Items {
			names = append(names, n.Name)
		}
	case res.NodeNames != nil:
		names = *res.NodeNames
	}
	byName := make(map[string]*spec.NodeInfo, len(nodes))
	for _, n := range nodes {
		byName[n.Name()] = n
	}
	for _, name := range names {
		n, ok := byName[name]
		if !ok {
			return nil, nil, nil, fmt.Errorf("%s: the reply names node %q, which was not sent", e.cfg.FilterVerb, name)
		}
		fit = append(fit, n)
		delete(byName, name)
	}
	return fit, res.FailedNodes, res.FailedAndUnresolvableNodes, nil
}

// prioritize asks the extender to rank nodes (0..MaxExtenderPriority).
func (e *extender) prioritize(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) (extenderv1.HostPriorityList, error) {
	args := extenderv1.ExtenderArgs{Pod: pod}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name()
	}
	if e.cfg.NodeCacheCapable {
		args.NodeNames = &names
	} else {
		list := &corev1.NodeList{Items: make([]corev1.Node, len(nodes))}
		for i, n := range nodes {
			list.Items[i] = *n.Node
		}
		args.Nodes = list
	}
	var res extenderv1.HostPriorityList
	if err := e.call(ctx, e.cfg.PrioritizeVerb, &args, &res); err != nil {
		return nil, err
	}
	for _, hp := range res {
		if hp.Score < extenderv1.MinExtenderPriority || hp.Score > extenderv1.MaxExtenderPriority {
			return nil, fmt.Errorf("%s: node %q has score %d, outside [%d, %d]", e.cfg.PrioritizeVerb, hp.Host,
				hp.Score, extenderv1.MinExtenderPriority, extenderv1.MaxExtenderPriority)
		}
	}
	return res, nil
}

// bind asks the extender to bind pod to node.
func (e *extender) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	args := extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: pod.UID, Node: node}
	var res extenderv1.ExtenderBindingResult
	if err := e.call(ctx, e.cfg.BindVerb, &args, &res); err != nil {
		return err
	}
	if res.Error != "" {
		return fmt.Errorf("%s: %s", e.cfg.BindVerb, res.Error)
	}
	return nil
}

// Name names the extender in statuses and scores.
func (e *extender) Name() string { return e.name }

// Filter is the extender as the cycle's filter hook: pods it is not
// interested in, and extenders without a filterVerb, keep every node; a
// failed call of an ignorable extender is logged, counted and keeps every
// node too.
func (e *extender) Filter(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) ([]*spec.NodeInfo, map[string]*spec.Status, error) {
	if e.cfg.FilterVerb == "" || !e.interested(pod) {
		return nodes, nil, nil
	}
	fit, failed, unresolvable, err := e.filter(ctx, pod, nodes)
	if err != nil {
		e.s.extenderFailed(e, "filter", pod, err)
		if e.cfg.Ignorable {
			return nodes, nil, nil
		}
		return nil, nil, fmt.Errorf("extender %s: %w", e.cfg.URLPrefix, err)
	}
	rejected := map[string]*spec.Status{}
	for name, r := range failed {
		rejected[name] = &spec.Status{Code: spec.Unschedulable, Plugin: e.name, Reasons: []string{r}}
	}
	for name, r := range unresolvable {
		rejected[name] = &spec.Status{Code: spec.UnschedulableAndUnresolvable, Plugin: e.name, Reasons: []string{r}}
	}
	return fit, rejected, nil
}

// Prioritize is the extender as the cycle's prioritize hook: its 0..10
// priorities scaled to the plugins' 0..100, and its weight. Extenders
// without a prioritizeVerb, and pods they are not interested in, give no
// scores; a failed call of an ignorable extender is logged, counted and
// gives none.
func (e *extender) Prioritize(ctx context.Context, pod *corev1.Pod, nodes []*spec.NodeInfo) (map[string]int64, int64, error) {
	if e.cfg.PrioritizeVerb == "" || !e.interested(pod) {
		return nil, 0, nil
	}
	list, err := e.prioritize(ctx, pod, nodes)
	if err != nil {
		e.s.extenderFailed(e, "prioritize", pod, err)
		if e.cfg.Ignorable {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("extender %s: %w", e.cfg.URLPrefix, err)
	}
	scores := make(map[string]int64, len(list))
	for _, hp := range list {
		scores[hp.Host] = hp.Score * (spec.MaxNodeScore / extenderv1.MaxExtenderPriority)
	}
	return scores, e.cfg.Weight, nil
}

// extenderFailed logs and counts a failed call.
func (s *Scheduler) extenderFailed(e *extender, verb string, pod *corev1.Pod, err error) {
	s.metrics.extenderErrors.WithLabelValues(e.cfg.URLPrefix, verb, fmt.Sprint(e.cfg.Ignorable)).Inc()
	s.log.Warn("scheduler extender failed", "extender", e.cfg.URLPrefix, "verb", verb, "pod", pod.Namespace+"/"+pod.Name,
		"ignorable", e.cfg.Ignorable, "err", err)
}

// binderExtender returns the first interested extender that binds.
func binderExtender(prof *schedProfile, pod *corev1.Pod) *extender {
	for _, e := range prof.extenders {
		if e.cfg.BindVerb != "" && e.interested(pod) {
			return e
		}
	}
	return nil
}
