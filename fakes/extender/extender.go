// Package extender is a small sample HTTP scheduler extender speaking the
// k8s.io/kube-scheduler/extender/v1 types, as any kube-scheduler extender
// does. It filters out nodes carrying a label, prefers nodes by the
// numeric value of another label, and can bind pods through the API. The
// kubelab scheduler's tests and the scheduler suite's meta-tests use it as a
// third party's extender; tools/extender serves it.
//
// Endpoints (POST, JSON): /filter (ExtenderArgs → ExtenderFilterResult),
// /prioritize (ExtenderArgs → HostPriorityList), /bind
// (ExtenderBindingArgs → ExtenderBindingResult).
package extender

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

// Default labels of Config.
const (
	DefaultExcludeLabel = "extender.kubelab.io/exclude"
	DefaultScoreLabel   = "extender.kubelab.io/score"
)

// Config configures the sample extender.
type Config struct {
	// ExcludeLabel: nodes with this label (any value) are filtered out.
	ExcludeLabel string
	// ScoreLabel: a node's priority is this label's value, clamped to
	// 0..10 (missing or not a number: 0).
	ScoreLabel string
	// Client, when set, lets /bind create the pod's Binding; without it
	// /bind replies with an error.
	Client kubernetes.Interface
	// Nodes, when set, resolves node names for nodeCacheCapable callers;
	// without it, a request that carries only names is answered by name
	// (nothing is filtered, every score is 0).
	Nodes func(name string) (*corev1.Node, bool)
}

// Server is the sample extender's handler, with call counters and fault
// switches for tests.
type Server struct {
	cfg Config
	// mu guards calls, the number of requests per verb.
	mu    sync.Mutex
	calls map[string]int
	// malformed and delay inject faults.
	malformed atomic.Bool
	delay     atomic.Int64
}

// New returns the extender with cfg (labels defaulted).
func New(cfg Config) *Server {
	if cfg.ExcludeLabel == "" {
		cfg.ExcludeLabel = DefaultExcludeLabel
	}
	if cfg.ScoreLabel == "" {
		cfg.ScoreLabel = DefaultScoreLabel
	}
	return &Server{cfg: cfg, calls: map[string]int{}}
}

// SetMalformed makes every reply malformed JSON (for tests of the
// scheduler's handling of a broken extender).
func (s *Server) SetMalformed(on bool) { s.malformed.Store(on) }

// SetDelay delays every reply by d (for timeout tests).
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Calls returns how many requests a verb ("filter", "prioritize", "bind")
// received.
func (s *Server) Calls(verb string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[verb]
}

// ServeHTTP serves /filter, /prioritize and /bind.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	verb := r.URL.Path
	for len(verb) > 0 && verb[0] == '/' {
		verb = verb[1:]
	}
	s.mu.Lock()
	s.calls[verb]++
	s.mu.Unlock()
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if s.malformed.Load() {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"nodes": [`))
		return
	}
	var reply any
	switch verb {
	case "filter":
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply = s.filter(&args)
	case "prioritize":
		var args extenderv1.ExtenderArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply = s.prioritize(&args)
	case "bind":
		var args extenderv1.ExtenderBindingArgs
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply = s.bind(r.Context(), &args)
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// nodes returns the request's nodes (full objects, or resolved names).
func (s *Server) nodes(args *extenderv1.ExtenderArgs) (nodes []*corev1.Node, byName bool) {
	if args.Nodes != nil {
		for i := range args.Nodes.Items {
			nodes = append(nodes, &args.Nodes.Items[i])
		}
		return nodes, false
	}
	if args.NodeNames != nil {
		for _, name := range *args.NodeNames {
			n, ok := (*corev1.Node)(nil), false
			if s.cfg.Nodes != nil {
				n, ok = s.cfg.Nodes(name)
			}
			if !ok {
				n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
			}
			nodes = append(nodes, n)
		}
	}
	return nodes, true
}

func (s *Server) filter(args *extenderv1.ExtenderArgs) *extenderv1.ExtenderFilterResult {
	nodes, byName := s.nodes(args)
	res := &extenderv1.ExtenderFilterResult{FailedNodes: extenderv1.FailedNodesMap{}}
	var names []string
	list := &corev1.NodeList{}
	for _, n := range nodes {
		if _, ok := n.Labels[s.cfg.ExcludeLabel]; ok {
			res.FailedNodes[n.Name] = fmt.Sprintf("node(s) had label %s", s.cfg.ExcludeLabel)
			continue
		}
		names = append(names, n.Name)
		list.Items = append(list.Items, *n)
	}
	if byName {
		res.NodeNames = &names
	} else {
		res.Nodes = list
	}
	return res
}

func (s *Server) prioritize(args *extenderv1.ExtenderArgs) extenderv1.HostPriorityList {
	nodes, _ := s.nodes(args)
	out := make(extenderv1.HostPriorityList, 0, len(nodes))
	for _, n := range nodes {
		v, err := strconv.ParseInt(n.Labels[s.cfg.ScoreLabel], 10, 64)
		if err != nil || v < extenderv1.MinExtenderPriority {
			v = extenderv1.MinExtenderPriority
		}
		if v > extenderv1.MaxExtenderPriority {
			v = extenderv1.MaxExtenderPriority
		}
		out = append(out, extenderv1.HostPriority{Host: n.Name, Score: v})
	}
	return out
}

func (s *Server) bind(ctx context.Context, args *extenderv1.ExtenderBindingArgs) *extenderv1.ExtenderBindingResult {
	if s.cfg.Client == nil {
		return &extenderv1.ExtenderBindingResult{Error: "this extender has no API client to bind with"}
	}
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: args.PodNamespace, Name: args.PodName, UID: args.PodUID,
			Annotations: map[string]string{"extender.kubelab.io/bound-by": "sample-extender"}},
		Target: corev1.ObjectReference{Kind: "Node", Name: args.Node},
	}
	if err := s.cfg.Client.CoreV1().Pods(args.PodNamespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return &extenderv1.ExtenderBindingResult{Error: err.Error()}
	}
	return &extenderv1.ExtenderBindingResult{}
}
