package admission

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
)

// Builders for this package's tests.

var (
	podsGVR    = corev1.SchemeGroupVersion.WithResource("pods")
	nodesGVR   = corev1.SchemeGroupVersion.WithResource("nodes")
	nsGVR      = corev1.SchemeGroupVersion.WithResource("namespaces")
	cmGVR      = corev1.SchemeGroupVersion.WithResource("configmaps")
	pvGVR      = corev1.SchemeGroupVersion.WithResource("persistentvolumes")
	leaseGVR   = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
	pcGVR      = schedulingv1.SchemeGroupVersion.WithResource("priorityclasses")
	lsarGVR    = schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "localsubjectaccessreviews"}
	admin      = &user.DefaultInfo{Name: "kubernetes-admin", Groups: []string{user.SystemPrivilegedGroup}}
	node1      = &user.DefaultInfo{Name: "system:node:n1", Groups: []string{user.NodesGroup, user.AllAuthenticated}}
	badNode    = &user.DefaultInfo{Name: "kubelet", Groups: []string{user.NodesGroup}}
	notInGroup = &user.DefaultInfo{Name: "system:node:n1"} // the name alone makes no node
)

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt       { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func withClass(c string) podOpt    { return func(p *corev1.Pod) { p.Spec.PriorityClassName = c } }
func withPriority(v int32) podOpt  { return func(p *corev1.Pod) { p.Spec.Priority = &v } }
func withLabel(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels = map[string]string{k: v} } }
func withSA(sa string) podOpt      { return func(p *corev1.Pod) { p.Spec.ServiceAccountName = sa } }
func withPhase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func withPolicy(pp corev1.PreemptionPolicy) podOpt {
	return func(p *corev1.Pod) { p.Spec.PreemptionPolicy = &pp }
}

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func namespace(name string, phase corev1.NamespacePhase) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: phase}}
}

func class(name string, value int32, globalDefault bool, policy corev1.PreemptionPolicy) *schedulingv1.PriorityClass {
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: globalDefault}
	if policy != "" {
		pc.PreemptionPolicy = &policy
	}
	return pc
}

// fakeNamespaces is a NamespaceGetter over a map; a nil entry is a
// store failure.
type fakeNamespaces map[string]*corev1.Namespace

func (f fakeNamespaces) GetNamespace(_ context.Context, name string) (*corev1.Namespace, error) {
	ns, ok := f[name]
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	if ns == nil {
		return nil, errors.New("store unavailable")
	}
	return ns, nil
}

// fakeClasses is a PriorityClassLister over a slice.
type fakeClasses []*schedulingv1.PriorityClass

func (f fakeClasses) GetPriorityClass(_ context.Context, name string) (*schedulingv1.PriorityClass, error) {
	for _, pc := range f {
		if pc.Name == name {
			return pc, nil
		}
	}
	return nil, apierrors.NewNotFound(schedulingv1.Resource("priorityclasses"), name)
}

func (f fakeClasses) ListPriorityClasses(context.Context) ([]*schedulingv1.PriorityClass, error) {
	return f, nil
}

// wantErr checks err against an expected outcome: "" for success, else
// "<reason>: <message substring>" such as "Forbidden: is being terminated".
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("admitted, want %s", want)
	}
	reason, msg, _ := strings.Cut(want, ": ")
	if got := string(apierrors.ReasonForError(err)); got != reason {
		t.Errorf("reason %q, want %q (%v)", got, reason, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("message %q does not contain %q", err.Error(), msg)
	}
}

func TestChain(t *testing.T) {
	var order []string
	rec := func(name string, err error) *recorder { return &recorder{name: name, order: &order, err: err} }
	c, err := NewChain(rec("a", nil), &validatorOnly{rec("b", nil)}, rec("c", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), &Attributes{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "admit:a admit:c validate:a validate:b validate:c" {
		t.Errorf("order %q: mutating plugins must all run before validating ones", got)
	}

	t.Run("duplicate names", func(t *testing.T) {
		if _, err := NewChain(rec("a", nil), rec("a", nil)); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("plugin of no kind", func(t *testing.T) {
		if _, err := NewChain(nameOnly{}); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("stops at first error", func(t *testing.T) {
		order = nil
		c, _ := NewChain(rec("x", apierrors.NewForbidden(podsGVR.GroupResource(), "p", errors.New("no"))), rec("y", nil))
		err := c.Admit(context.Background(), &Attributes{})
		wantErr(t, err, `Forbidden: pods "p" is forbidden: no`)
		if strings.Join(order, " ") != "admit:x" {
			t.Errorf("ran %v", order)
		}
	})
	t.Run("plain errors become internal errors", func(t *testing.T) {
		c, _ := NewChain(rec("x", errors.New("boom")))
		wantErr(t, c.Admit(context.Background(), &Attributes{}), `InternalError: admission plugin "x" failed: boom`)
	})
}

type recorder struct {
	name  string
	order *[]string
	err   error
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Admit(context.Context, *Attributes) error {
	*r.order = append(*r.order, "admit:"+r.name)
	return r.err
}
func (r *recorder) Validate(context.Context, *Attributes) error {
	*r.order = append(*r.order, "validate:"+r.name)
	return r.err
}

type validatorOnly struct{ r *recorder }

func (v *validatorOnly) Name() string { return v.r.name }
func (v *validatorOnly) Validate(ctx context.Context, a *Attributes) error {
	return v.r.Validate(ctx, a)
}

type nameOnly struct{}

func (nameOnly) Name() string { return "nothing" }

func TestNewForbiddenName(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Attributes
		want string
	}{
		{"name", Attributes{Resource: podsGVR, Name: "p"}, `pods "p" is forbidden: x`},
		{"object name", Attributes{Resource: podsGVR, Object: pod("q")}, `pods "q" is forbidden: x`},
		{"generateName", Attributes{Resource: podsGVR, Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"}}}, `pods "web-" is forbidden: x`},
		{"unknown", Attributes{Resource: leaseGVR}, `leases.coordination.k8s.io "Unknown" is forbidden: x`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewForbidden(&tc.a, errors.New("x")).Error(); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

func TestNamespaceLifecycle(t *testing.T) {
	p := NewNamespaceLifecycle(fakeNamespaces{
		"default": namespace("default", corev1.NamespaceActive),
		"dying":   namespace("dying", corev1.NamespaceTerminating),
		"broken":  nil,
		"deleted": {ObjectMeta: metav1.ObjectMeta{Name: "deleted", DeletionTimestamp: &metav1.Time{}}},
	})
	for _, tc := range []struct {
		name string
		a    Attributes
		want string
	}{
		{"create in active namespace", Attributes{Operation: Create, Resource: podsGVR, Namespace: "default", Object: pod("p")}, ""},
		{"create in missing namespace", Attributes{Operation: Create, Resource: podsGVR, Namespace: "nope", Object: pod("p")},
			`NotFound: namespaces "nope" not found`},
		{"update in missing namespace", Attributes{Operation: Update, Resource: cmGVR, Namespace: "nope", Name: "c"},
			`NotFound: namespaces "nope" not found`},
		{"create in terminating namespace", Attributes{Operation: Create, Resource: podsGVR, Namespace: "dying", Object: pod("p")},
			`Forbidden: pods "p" is forbidden: unable to create new content in namespace dying because it is being terminated`},
		{"create in namespace being deleted", Attributes{Operation: Create, Resource: cmGVR, Namespace: "deleted", Name: "c"},
			`Forbidden: configmaps "c" is forbidden: unable to create new content in namespace deleted because it is being terminated`},
		{"update in terminating namespace", Attributes{Operation: Update, Resource: podsGVR, Namespace: "dying", Name: "p"}, ""},
		{"status update in terminating namespace", Attributes{Operation: Update, Resource: podsGVR, Subresource: "status", Namespace: "dying", Name: "p"}, ""},
		{"delete in terminating namespace", Attributes{Operation: Delete, Resource: podsGVR, Namespace: "dying", Name: "p"}, ""},
		{"delete in missing namespace", Attributes{Operation: Delete, Resource: podsGVR, Namespace: "nope", Name: "p"}, ""},
		{"cluster-scoped create", Attributes{Operation: Create, Resource: nodesGVR, Object: node("n1", nil)}, ""},
		{"cluster-scoped persistent volume", Attributes{Operation: Create, Resource: pvGVR, Name: "pv"}, ""},
		{"namespace itself", Attributes{Operation: Create, Resource: nsGVR, Name: "new", Namespace: "new"}, ""},
		{"finalize terminating namespace", Attributes{Operation: Update, Resource: nsGVR, Subresource: "finalize", Name: "dying", Namespace: "dying"}, ""},
		{"delete a namespace", Attributes{Operation: Delete, Resource: nsGVR, Name: "dying", Namespace: "dying"}, ""},
		{"delete kube-system", Attributes{Operation: Delete, Resource: nsGVR, Name: "kube-system", Namespace: "kube-system"},
			`Forbidden: namespaces "kube-system" is forbidden: this namespace may not be deleted`},
		{"delete default", Attributes{Operation: Delete, Resource: nsGVR, Name: "default", Namespace: "default"}, "Forbidden: may not be deleted"},
		{"access review in missing namespace", Attributes{Operation: Create, Resource: lsarGVR, Namespace: "nope"}, ""},
		{"getter failure", Attributes{Operation: Create, Resource: podsGVR, Namespace: "broken", Object: pod("p")},
			"InternalError: store unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, p.Validate(context.Background(), &tc.a), tc.want)
		})
	}

	t.Run("terminating cause", func(t *testing.T) {
		err := p.Validate(context.Background(), &Attributes{Operation: Create, Resource: podsGVR, Namespace: "dying", Object: pod("p")})
		var st *apierrors.StatusError
		if !errors.As(err, &st) || st.ErrStatus.Details == nil || len(st.ErrStatus.Details.Causes) != 1 ||
			st.ErrStatus.Details.Causes[0].Type != corev1.NamespaceTerminatingCause || st.ErrStatus.Details.Causes[0].Field != "metadata.namespace" {
			t.Errorf("status %+v lacks the NamespaceTerminating cause", err)
		}
	})
}

func TestNodeRestriction(t *testing.T) {
	p := NewNodeRestriction()
	taint := corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}
	restricted := map[string]string{RestrictedLabelPrefix + "pool": "gold"}
	for _, tc := range []struct {
		name string
		a    Attributes
		want string
	}{
		// nodes
		{"create own node", Attributes{Operation: Create, Resource: nodesGVR, Object: node("n1", nil, taint)}, ""},
		{"create another node", Attributes{Operation: Create, Resource: nodesGVR, Object: node("n2", nil)},
			`Forbidden: nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`},
		{"update own node status", Attributes{Operation: Update, Resource: nodesGVR, Subresource: "status", Name: "n1",
			Object: node("n1", nil), OldObject: node("n1", nil)}, ""},
		{"update another node's status", Attributes{Operation: Update, Resource: nodesGVR, Subresource: "status", Name: "n2",
			Object: node("n2", nil), OldObject: node("n2", nil)}, `Forbidden: node "n1" is not allowed to modify node "n2"`},
		{"update own node labels", Attributes{Operation: Update, Resource: nodesGVR, Name: "n1",
			Object: node("n1", map[string]string{"a": "b"}), OldObject: node("n1", nil)}, ""},
		{"change own taints", Attributes{Operation: Update, Resource: nodesGVR, Name: "n1",
			Object: node("n1", nil), OldObject: node("n1", nil, taint)}, `Forbidden: node "n1" is not allowed to modify taints`},
		{"set restricted label", Attributes{Operation: Update, Resource: nodesGVR, Name: "n1",
			Object: node("n1", restricted), OldObject: node("n1", nil)}, "Forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"},
		{"keep restricted label", Attributes{Operation: Update, Resource: nodesGVR, Name: "n1",
			Object: node("n1", restricted), OldObject: node("n1", restricted)}, ""},
		{"remove restricted label", Attributes{Operation: Update, Resource: nodesGVR, Name: "n1",
			Object: node("n1", nil), OldObject: node("n1", restricted)}, "Forbidden: modify labels"},
		{"create with restricted label", Attributes{Operation: Create, Resource: nodesGVR, Object: node("n1", restricted)}, "Forbidden: modify labels"},
		{"delete own node", Attributes{Operation: Delete, Resource: nodesGVR, Name: "n1", OldObject: node("n1", nil)}, ""},
		{"delete another node", Attributes{Operation: Delete, Resource: nodesGVR, Name: "n2", OldObject: node("n2", nil)}, "Forbidden: modify node"},
		// pods
		{"update status of own pod", Attributes{Operation: Update, Resource: podsGVR, Subresource: "status", Namespace: "default", Name: "p",
			Object: pod("p", onNode("n1"), withPhase(corev1.PodRunning)), OldObject: pod("p", onNode("n1"))}, ""},
		{"update status of another node's pod", Attributes{Operation: Update, Resource: podsGVR, Subresource: "status", Namespace: "default", Name: "p",
			Object: pod("p", onNode("n2")), OldObject: pod("p", onNode("n2"))},
			`Forbidden: pods "p" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself`},
		{"claim a pod through status", Attributes{Operation: Update, Resource: podsGVR, Subresource: "status", Namespace: "default", Name: "p",
			Object: pod("p", onNode("n1")), OldObject: pod("p")}, "Forbidden: spec.nodeName set to itself"},
		{"change labels through status", Attributes{Operation: Update, Resource: podsGVR, Subresource: "status", Namespace: "default", Name: "p",
			Object: pod("p", onNode("n1"), withLabel("a", "b")), OldObject: pod("p", onNode("n1"))}, "Forbidden: cannot update labels"},
		{"delete own pod", Attributes{Operation: Delete, Resource: podsGVR, Namespace: "default", Name: "p", OldObject: pod("p", onNode("n1"))}, ""},
		{"delete another node's pod", Attributes{Operation: Delete, Resource: podsGVR, Namespace: "default", Name: "p", OldObject: pod("p", onNode("n2"))},
			"Forbidden: can only delete pods with spec.nodeName set to itself"},
		{"create pod", Attributes{Operation: Create, Resource: podsGVR, Namespace: "default", Object: pod("p", onNode("n1"))}, "Forbidden: mirror pods"},
		{"update pod spec", Attributes{Operation: Update, Resource: podsGVR, Namespace: "default", Name: "p",
			Object: pod("p", onNode("n1")), OldObject: pod("p", onNode("n1"))}, `Forbidden: unexpected operation "UPDATE"`},
		{"bind a pod", Attributes{Operation: Create, Resource: podsGVR, Subresource: "binding", Namespace: "default", Name: "p"},
			`Forbidden: unexpected subresource "binding"`},
		{"evict own pod", Attributes{Operation: Create, Resource: podsGVR, Subresource: "eviction", Namespace: "default", Name: "p",
			OldObject: pod("p", onNode("n1"))}, ""},
		{"evict another node's pod", Attributes{Operation: Create, Resource: podsGVR, Subresource: "eviction", Namespace: "default", Name: "p",
			OldObject: pod("p", onNode("n2"))}, "Forbidden: can only evict pods with spec.nodeName set to itself"},
		{"evict without the pod", Attributes{Operation: Create, Resource: podsGVR, Subresource: "eviction", Namespace: "default", Name: "p"},
			"Forbidden: the pod was not given"},
		// leases and others
		{"own lease", Attributes{Operation: Update, Resource: leaseGVR, Namespace: corev1.NamespaceNodeLease, Name: "n1"}, ""},
		{"another node's lease", Attributes{Operation: Update, Resource: leaseGVR, Namespace: corev1.NamespaceNodeLease, Name: "n2"},
			"Forbidden: can only access node lease with the same name"},
		{"lease elsewhere is RBAC's business", Attributes{Operation: Update, Resource: leaseGVR, Namespace: "default", Name: "x"}, ""},
		{"configmaps pass", Attributes{Operation: Create, Resource: cmGVR, Namespace: "default", Name: "c"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.a.UserInfo = node1
			wantErr(t, p.Validate(context.Background(), &tc.a), tc.want)
		})
	}

	for _, tc := range []struct {
		name string
		u    user.Info
		want string
	}{
		{"admin passes", admin, ""},
		{"node name without group passes", notInGroup, ""},
		{"group without node name", badNode, `Forbidden: could not determine node from user "kubelet"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Attributes{Operation: Update, Resource: nodesGVR, Name: "n2", Object: node("n2", nil, taint), OldObject: node("n2", nil), UserInfo: tc.u}
			wantErr(t, p.Validate(context.Background(), a), tc.want)
		})
	}
}

func TestPriority(t *testing.T) {
	never := corev1.PreemptNever
	classes := fakeClasses{
		class("high", 1000, false, corev1.PreemptNever),
		class("low", 10, false, ""),
	}
	withDefaults := append(fakeClasses{class("dflt-b", 50, true, ""), class("dflt-a", 40, true, corev1.PreemptNever)}, classes...)
	for _, tc := range []struct {
		name         string
		classes      fakeClasses
		pod          *corev1.Pod
		want         string
		wantClass    string
		wantPriority int32
		wantPolicy   corev1.PreemptionPolicy
	}{
		{"named class", classes, pod("p", withClass("high")), "", "high", 1000, corev1.PreemptNever},
		{"class without policy", classes, pod("p", withClass("low")), "", "low", 10, corev1.PreemptLowerPriority},
		{"no class, no default", classes, pod("p"), "", "", 0, corev1.PreemptLowerPriority},
		{"no class, lowest global default wins", withDefaults, pod("p"), "", "dflt-a", 40, never},
		{"system-node-critical built in", classes, pod("p", withClass(SystemNodeCritical)), "", SystemNodeCritical, 2000001000, corev1.PreemptLowerPriority},
		{"system-cluster-critical built in", classes, pod("p", withClass(SystemClusterCritical)), "", SystemClusterCritical, 2000000000, corev1.PreemptLowerPriority},
		{"stored system class wins", fakeClasses{class(SystemClusterCritical, 7, false, "")}, pod("p", withClass(SystemClusterCritical)), "", SystemClusterCritical, 7, corev1.PreemptLowerPriority},
		{"unknown class", classes, pod("p", withClass("nope")), `Forbidden: pods "p" is forbidden: no PriorityClass with name nope was found`, "", 0, ""},
		{"matching priority given", classes, pod("p", withClass("high"), withPriority(1000)), "", "high", 1000, corev1.PreemptNever},
		{"conflicting priority given", classes, pod("p", withClass("high"), withPriority(5)),
			"Forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000", "", 0, ""},
		{"conflicting policy given", classes, pod("p", withClass("low"), withPolicy(corev1.PreemptNever)),
			"Forbidden: the string value of PreemptionPolicy (Never) must not be provided", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Attributes{Operation: Create, Resource: podsGVR, Namespace: "default", Object: tc.pod}
			err := NewPriority(tc.classes).Admit(context.Background(), a)
			wantErr(t, err, tc.want)
			if err != nil {
				return
			}
			s := tc.pod.Spec
			if s.PriorityClassName != tc.wantClass || s.Priority == nil || *s.Priority != tc.wantPriority ||
				s.PreemptionPolicy == nil || *s.PreemptionPolicy != tc.wantPolicy {
				t.Errorf("got class %q priority %v policy %v, want %q %d %s", s.PriorityClassName, deref(s.Priority), derefP(s.PreemptionPolicy),
					tc.wantClass, tc.wantPriority, tc.wantPolicy)
			}
		})
	}

	t.Run("update keeps priority", func(t *testing.T) {
		old := pod("p", withPriority(1000), withPolicy(never))
		np := pod("p")
		if err := NewPriority(classes).Admit(context.Background(), &Attributes{Operation: Update, Resource: podsGVR, Object: np, OldObject: old}); err != nil {
			t.Fatal(err)
		}
		if deref(np.Spec.Priority) != int32(1000) || derefP(np.Spec.PreemptionPolicy) != never {
			t.Errorf("priority %v policy %v not kept", deref(np.Spec.Priority), derefP(np.Spec.PreemptionPolicy))
		}
	})
	t.Run("status and other resources untouched", func(t *testing.T) {
		p := pod("p", withClass("nope"))
		for _, a := range []*Attributes{
			{Operation: Create, Resource: podsGVR, Subresource: "binding", Object: p},
			{Operation: Create, Resource: cmGVR, Object: &corev1.ConfigMap{}},
		} {
			if err := NewPriority(classes).Admit(context.Background(), a); err != nil {
				t.Errorf("%s/%s: %v", a.Resource.Resource, a.Subresource, err)
			}
		}
	})
}

func deref(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

func derefP(p *corev1.PreemptionPolicy) corev1.PreemptionPolicy {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestPriorityClassGlobalDefault(t *testing.T) {
	existing := fakeClasses{class("dflt", 10, true, ""), class("other", 20, false, "")}
	for _, tc := range []struct {
		name string
		op   Operation
		pc   *schedulingv1.PriorityClass
		want string
	}{
		{"second default", Create, class("new", 5, true, ""), `Forbidden: priorityclasses.scheduling.k8s.io "new" is forbidden: PriorityClass dflt is already marked as default. Only one default can exist`},
		{"making another the default", Update, class("other", 20, true, ""), "Forbidden: already marked as default"},
		{"updating the default itself", Update, class("dflt", 11, true, ""), ""},
		{"not a default", Create, class("new", 5, false, ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Attributes{Operation: tc.op, Resource: pcGVR, Object: tc.pc}
			wantErr(t, NewPriority(existing).Validate(context.Background(), a), tc.want)
		})
	}
}

func TestSystemPriorityClasses(t *testing.T) {
	got := map[string]int32{}
	for _, pc := range SystemPriorityClasses() {
		got[pc.Name] = pc.Value
	}
	if got[SystemNodeCritical] != 2000001000 || got[SystemClusterCritical] != 2000000000 || len(got) != 2 {
		t.Errorf("system classes %v", got)
	}
}

func TestServiceAccount(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Attributes
		want string
	}{
		{"defaulted", Attributes{Operation: Create, Resource: podsGVR, Object: pod("p")}, "default"},
		{"kept", Attributes{Operation: Create, Resource: podsGVR, Object: pod("p", withSA("builder"))}, "builder"},
		{"update untouched", Attributes{Operation: Update, Resource: podsGVR, Object: pod("p")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := NewServiceAccount().Admit(context.Background(), &tc.a); err != nil {
				t.Fatal(err)
			}
			if got := tc.a.Object.(*corev1.Pod).Spec.ServiceAccountName; got != tc.want {
				t.Errorf("serviceAccountName %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDefaultChain runs a pod create through the whole default chain.
func TestDefaultChain(t *testing.T) {
	c := DefaultChain(fakeNamespaces{"default": namespace("default", corev1.NamespaceActive)}, fakeClasses{class("high", 1000, false, "")}, fakeRuntimeClasses{})
	p := pod("p", withClass("high"))
	if err := c.Run(context.Background(), &Attributes{Operation: Create, Resource: podsGVR, Namespace: "default", Object: p, UserInfo: admin}); err != nil {
		t.Fatal(err)
	}
	if p.Spec.ServiceAccountName != "default" || deref(p.Spec.Priority) != int32(1000) {
		t.Errorf("pod not defaulted: %+v", p.Spec)
	}
	err := c.Run(context.Background(), &Attributes{Operation: Create, Resource: podsGVR, Namespace: "gone", Object: pod("q"), UserInfo: admin})
	wantErr(t, err, `NotFound: namespaces "gone" not found`)
	err = c.Run(context.Background(), &Attributes{Operation: Create, Resource: podsGVR, Namespace: "default", Object: pod("q"), UserInfo: node1})
	wantErr(t, err, "Forbidden: mirror pods")
}
