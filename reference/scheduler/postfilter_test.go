package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	policylisters "k8s.io/client-go/listers/policy/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubelab/kubelab/spec"
	"github.com/kubelab/kubelab/spec/framework"
	"github.com/kubelab/kubelab/spec/spectest"
)

// pdbRecorder is a PostFilter plugin that records the PDBs its handle
// serves.
type pdbRecorder struct {
	h     spec.SchedulerHandle
	calls int
	seen  []string
}

func (*pdbRecorder) Name() string { return "TestPDBRecorder" }
func (p *pdbRecorder) PostFilter(context.Context, *spec.CycleState, *corev1.Pod, spec.Snapshot, map[string]*spec.Status) (string, *spec.Status) {
	p.calls++
	for _, b := range p.h.PodDisruptionBudgets() {
		p.seen = append(p.seen, b.Name)
	}
	return "", spec.NewStatus(spec.Unschedulable, "recorded")
}

// failingPDBLister fails every List.
type failingPDBLister struct {
	policylisters.PodDisruptionBudgetLister
}

func (failingPDBLister) List(labels.Selector) ([]*policyv1.PodDisruptionBudget, error) {
	return nil, errors.New("informer broken")
}

func TestPostFilterGetsThePDBsListedForItAndNoneWhenTheListFails(t *testing.T) {
	rec := &pdbRecorder{}
	reg := spec.NewRegistry()
	spec.MustRegister(reg.RegisterScheduler(spec.SchedulerPlugin{Name: rec.Name(), Description: "test",
		New: func(_ map[string]string, h spec.SchedulerHandle) (spec.Named, error) { rec.h = h; return rec, nil }}))
	s, err := New(Config{Client: kubernetesNilClient(), Registry: reg, Profiles: []spec.Profile{profile(DefaultSchedulerName, rec.Name())}})
	if err != nil {
		t.Fatal(err)
	}
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if err := idx.Add(&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "keep-one"}}); err != nil {
		t.Fatal(err)
	}
	s.pdbLister = policylisters.NewPodDisruptionBudgetLister(idx)
	c := &cycle{prof: s.profiles[DefaultSchedulerName], state: &spec.CycleState{}, pod: spectest.MakePod().Name("p").Obj()}
	fe := &framework.FitError{NumAllNodes: 1, Statuses: map[string]*spec.Status{"n": spec.NewStatus(spec.Unschedulable, "full")}}

	s.runPostFilter(context.Background(), c, fe)
	if rec.calls != 1 || strings.Join(rec.seen, ",") != "keep-one" || fe.PostFilterMessage != "recorded" {
		t.Fatalf("calls %d, PDBs seen %v, message %q; want 1, [keep-one], recorded", rec.calls, rec.seen, fe.PostFilterMessage)
	}
	if s.pdbs != nil {
		t.Errorf("the PDBs outlive their PostFilter: %v", s.pdbs)
	}

	s.pdbLister = failingPDBLister{}
	fe.PostFilterMessage = ""
	if node := s.runPostFilter(context.Background(), c, fe); node != "" {
		t.Errorf("nominated %q without PDBs", node)
	}
	if rec.calls != 1 {
		t.Errorf("PostFilter ran although the PDBs could not be listed")
	}
	if !strings.Contains(fe.PostFilterMessage, "informer broken") {
		t.Errorf("message %q does not report the failed list", fe.PostFilterMessage)
	}
}
