package scheduler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sampleext "github.com/kubelab/kubelab/fakes/extender"
	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestExtenderNodeCacheCapableAndManagedResources(t *testing.T) {
	nodes := map[string]*corev1.Node{}
	var infos []*spec.NodeInfo
	for name, labels := range map[string]map[string]string{
		"a": {sampleext.DefaultScoreLabel: "3"},
		"b": {sampleext.DefaultExcludeLabel: ""},
		"c": {sampleext.DefaultScoreLabel: "12"},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		nodes[name] = n
		infos = append(infos, spec.NewNodeInfo(n))
	}
	ext := sampleext.New(sampleext.Config{Nodes: func(name string) (*corev1.Node, bool) { n, ok := nodes[name]; return n, ok }})
	hs := httptest.NewServer(ext)
	defer hs.Close()
	e, err := newExtender(nil, ExtenderConfig{URLPrefix: hs.URL + "/", FilterVerb: "filter", PrioritizeVerb: "prioritize",
		Weight: 3, NodeCacheCapable: true, ManagedResources: []ManagedResource{{Name: "example.com/gpu"}}})
	if err != nil {
		t.Fatal(err)
	}
	plain := spectest.MakePod().Name("plain").Obj()
	gpu := plain.DeepCopy()
	gpu.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}
	if e.interested(plain) || !e.interested(gpu) {
		t.Errorf("interested: plain %v gpu %v", e.interested(plain), e.interested(gpu))
	}
	fit, failed, _, err := e.filter(context.Background(), gpu, infos)
	if err != nil {
		t.Fatal(err)
	}
	if len(fit) != 2 || failed["b"] == "" {
		t.Errorf("fit %d failed %v", len(fit), failed)
	}
	list, err := e.prioritize(context.Background(), gpu, infos)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, hp := range list {
		got[hp.Host] = hp.Score
	}
	if got["a"] != 3 || got["b"] != 0 || got["c"] != 10 { // c's 12 is clamped by the sample
		t.Errorf("priorities %v", got)
	}
	// An extender naming a node it was not sent is an error.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"nodeNames":["zzz"]}`))
	}))
	defer liar.Close()
	le, _ := newExtender(nil, ExtenderConfig{URLPrefix: liar.URL, FilterVerb: "filter", NodeCacheCapable: true})
	if _, _, _, err := le.filter(context.Background(), gpu, infos); err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("liar: %v", err)
	}
	// Out-of-range priorities are rejected.
	high := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`[{"host":"a","score":11}]`))
	}))
	defer high.Close()
	he, _ := newExtender(nil, ExtenderConfig{URLPrefix: high.URL, PrioritizeVerb: "p", Weight: 1})
	if _, err := he.prioritize(context.Background(), gpu, infos); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("score 11: %v", err)
	}
	// HTTP errors carry the status.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", 500) }))
	defer bad.Close()
	be, _ := newExtender(nil, ExtenderConfig{URLPrefix: bad.URL, FilterVerb: "f"})
	if _, _, _, err := be.filter(context.Background(), gpu, infos); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("500: %v", err)
	}
}
