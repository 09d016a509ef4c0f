package scheduler

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubelab/kubelab/spec/framework"
)

// ExplanationAnnotation is the pod annotation the scheduler writes its
// explanation to when Config.ExplainAnnotation is set.
const ExplanationAnnotation = "kubelab.io/scheduling-explanation"

// maxAnnotationBytes bounds the annotation; nodes beyond it are dropped
// (the feasible ones and the chosen one are kept first).
const maxAnnotationBytes = 32 * 1024

// Explanation is why a pod went where it went: the verdict of every node
// looked at in the pod's last scheduling attempt and each plugin's weighted
// score of the feasible ones. It is served as JSON at
// /explain/NAMESPACE/NAME.
type Explanation struct {
	// Namespace and Name name the pod; UID is its UID.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// SchedulerName is the profile that scheduled the pod.
	SchedulerName string `json:"schedulerName"`
	// Attempt counts the pod's scheduling attempts (1 for the first).
	Attempt int `json:"attempt"`
	// Time is when the attempt ended.
	Time time.Time `json:"time"`
	// Result is Scheduled, Unschedulable or Error.
	Result string `json:"result"`
	// Node is the chosen node (empty unless Result is Scheduled).
	Node string `json:"node,omitempty"`
	// Message is the failure message (the FailedScheduling event's).
	Message string `json:"message,omitempty"`
	// NodesTotal is the number of nodes in the snapshot; Nodes lists the
	// ones evaluated (percentageOfNodesToScore may stop earlier).
	NodesTotal int               `json:"nodesTotal"`
	Nodes      []NodeExplanation `json:"nodes"`
	// Truncated says nodes were dropped to bound the annotation's size.
	Truncated bool `json:"truncated,omitempty"`
}

// NodeExplanation is one node's verdict in an Explanation.
type NodeExplanation struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Verdict is Feasible, or the rejecting status's code
	// (Unschedulable, UnschedulableAndUnresolvable).
	Verdict string `json:"verdict"`
	// Plugin rejected the node (a plugin or "extender <url>").
	Plugin string `json:"plugin,omitempty"`
	// Reason is the rejection's message.
	Reason string `json:"reason,omitempty"`
	// Scores are the plugins' weighted normalized scores (and extenders'
	// scaled ones) of a feasible node.
	Scores map[string]int64 `json:"scores,omitempty"`
	// Total sums Scores.
	Total int64 `json:"total"`
	// Chosen marks the node the pod went to.
	Chosen bool `json:"chosen,omitempty"`
}

// record fills the explanation from a cycle's Result: every evaluated
// node with its verdict, each plugin's (and extender's) weighted score of
// the feasible ones, and the chosen node.
func (x *Explanation) record(res *framework.Result) {
	x.NodesTotal = res.NumAllNodes
	x.Nodes = x.Nodes[:0]
	for i, n := range res.Feasible {
		ne := NodeExplanation{Node: n.Name(), Verdict: "Feasible", Chosen: n.Name() == res.Node}
		for _, ps := range res.Scores {
			if ps.Skipped {
				continue
			}
			if ne.Scores == nil {
				ne.Scores = map[string]int64{}
			}
			w := ps.Weighted(i)
			ne.Scores[ps.Plugin] += w
			ne.Total += w
		}
		x.Nodes = append(x.Nodes, ne)
	}
	for name, st := range res.Rejected {
		x.Nodes = append(x.Nodes, NodeExplanation{Node: name, Verdict: st.Code.String(), Plugin: st.Plugin, Reason: st.Message()})
	}
}

// explanations keeps the last explanation of each pod.
type explanations struct {
	mu  sync.Mutex
	m   map[string]*Explanation
	max int
}

func (e *explanations) put(x *Explanation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]*Explanation{}
	}
	key := x.Namespace + "/" + x.Name
	if _, ok := e.m[key]; !ok && e.max > 0 && len(e.m) >= e.max {
		for k := range e.m { // drop an arbitrary old one
			delete(e.m, k)
			break
		}
	}
	e.m[key] = x
}

func (e *explanations) get(ns, name string) *Explanation {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[ns+"/"+name]
}

func (e *explanations) forget(ns, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, ns+"/"+name)
}

// sortExplanation orders nodes: chosen first, then feasible by total, then
// rejected by name.
func sortExplanation(x *Explanation) {
	sort.SliceStable(x.Nodes, func(i, j int) bool {
		a, b := x.Nodes[i], x.Nodes[j]
		if a.Chosen != b.Chosen {
			return a.Chosen
		}
		fa, fb := a.Verdict == "Feasible", b.Verdict == "Feasible"
		if fa != fb {
			return fa
		}
		if fa && a.Total != b.Total {
			return a.Total > b.Total
		}
		return a.Node < b.Node
	})
}

// annotationValue is x as JSON bounded to maxAnnotationBytes: nodes are
// dropped from the end (rejected ones first, as sorted) until it fits.
func annotationValue(x *Explanation) string {
	c := *x
	for {
		b, err := json.Marshal(&c)
		if err == nil && len(b) <= maxAnnotationBytes {
			return string(b)
		}
		if len(c.Nodes) == 0 {
			return ""
		}
		c.Truncated = true
		c.Nodes = c.Nodes[:len(c.Nodes)/2]
	}
}

// serveExplain serves GET /explain/NAMESPACE/NAME.
func (s *Scheduler) serveExplain(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/explain/"), "/")
	w.Header().Set("Content-Type", "application/json")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "want /explain/NAMESPACE/NAME"})
		return
	}
	if !s.cfg.Explain {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "explanations are off: start the scheduler with --explain"})
		return
	}
	x := s.explained.get(parts[0], parts[1])
	if x == nil {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no scheduling attempt recorded for pod " + parts[0] + "/" + parts[1]})
		return
	}
	_ = json.NewEncoder(w).Encode(x)
}
