package deployment

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubelab/kubelab/spec/spectest"
)

var now = metav1.NewTime(time.Unix(100000, 0))

// rsFor is a ReplicaSet of d's template with image img (as the controller
// would have made it), replicas, available pods and revision.
func rsFor(d *appsv1.Deployment, img string, replicas, available int32, revision int64, created int64) *appsv1.ReplicaSet {
	c := d.DeepCopy()
	c.Spec.Template.Spec.Containers[0].Image = img
	rs := newReplicaSet(c, replicas, revision)
	rs.UID = types.UID("uid-" + rs.Name)
	rs.CreationTimestamp = metav1.NewTime(time.Unix(created, 0))
	rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: available, AvailableReplicas: available, ObservedGeneration: rs.Generation}
	return rs
}

func replicasByImage(step Step, in []*appsv1.ReplicaSet) map[string]int32 {
	out := map[string]int32{}
	for _, rs := range in {
		out[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
	}
	for _, rs := range step.Update {
		out[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
	}
	if step.Create != nil {
		out[step.Create.Spec.Template.Spec.Containers[0].Image] = *step.Create.Spec.Replicas
	}
	return out
}

func cond(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) string {
	if c := getCondition(st, t); c != nil {
		return string(c.Status) + "/" + c.Reason
	}
	return ""
}

func TestReconcile(t *testing.T) {
	surge1 := func() *spectest.DeploymentWrapper {
		return spectest.MakeDeployment().Image("v2").Surge(intstr.FromInt32(1), intstr.FromInt32(0))
	}
	progressingSince := func(d *appsv1.Deployment, sec int64) *appsv1.Deployment {
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
			Reason: ReasonRSUpdated, LastUpdateTime: metav1.NewTime(time.Unix(sec, 0)), LastTransitionTime: metav1.NewTime(time.Unix(sec, 0))}}
		return d
	}
	type rsSpec struct {
		img                 string
		replicas, available int32
		rev                 int64
	}
	for _, tc := range []struct {
		name         string
		d            *appsv1.Deployment
		rss          []rsSpec
		oldPods      bool
		scaledFrom   int32            // the replicas the ReplicaSets were last scaled for (0: the Deployment's)
		want         map[string]int32 // replicas by image after the step
		wantCreate   bool
		wantDeleted  int
		wantRevision string
		progressing  string
		available    string
	}{
		{name: "new deployment creates its replicaset at full size within surge",
			d: surge1().Obj(), want: map[string]int32{"v2": 3}, wantCreate: true, wantRevision: "1",
			progressing: "True/" + ReasonNewRSCreated, available: "False/" + ReasonMinimumUnavailable},
		{name: "template change creates the new replicaset at maxSurge",
			d: surge1().Obj(), rss: []rsSpec{{"v1", 3, 3, 1}}, want: map[string]int32{"v1": 3, "v2": 1}, wantCreate: true, wantRevision: "2",
			progressing: "True/" + ReasonNewRSCreated, available: "True/" + ReasonMinimumAvailable},
		{name: "old scaled down once a new pod is available",
			d: surge1().Obj(), rss: []rsSpec{{"v1", 3, 3, 1}, {"v2", 1, 1, 2}}, want: map[string]int32{"v1": 2, "v2": 1}},
		{name: "old kept while the new pod is unavailable (maxUnavailable 0)",
			d: surge1().Obj(), rss: []rsSpec{{"v1", 3, 3, 1}, {"v2", 1, 0, 2}}, want: map[string]int32{"v1": 3, "v2": 1}},
		{name: "new scaled up after old went down",
			d: surge1().Obj(), rss: []rsSpec{{"v1", 2, 2, 1}, {"v2", 1, 1, 2}}, want: map[string]int32{"v1": 2, "v2": 2}},
		{name: "unavailable old pods are removed first, beyond the availability budget",
			d:   spectest.MakeDeployment().Image("v2").Surge(intstr.FromInt32(0), intstr.FromInt32(1)).Obj(),
			rss: []rsSpec{{"v1", 3, 1, 1}, {"v2", 0, 0, 2}}, want: map[string]int32{"v1": 2, "v2": 0}},
		{name: "maxUnavailable lets old go before new exists",
			d:   spectest.MakeDeployment().Image("v2").Surge(intstr.FromInt32(0), intstr.FromInt32(1)).Obj(),
			rss: []rsSpec{{"v1", 3, 3, 1}, {"v2", 0, 0, 2}}, want: map[string]int32{"v1": 2, "v2": 0}},
		{name: "scale down follows spec.replicas",
			d: spectest.MakeDeployment().Image("v2").Replicas(1).Obj(), rss: []rsSpec{{"v2", 3, 3, 1}}, scaledFrom: 3, want: map[string]int32{"v2": 1}},
		{name: "scaling mid-rollout is proportional (upstream's documented 10→15 example)",
			d:   spectest.MakeDeployment().Image("v2").Replicas(15).Surge(intstr.FromInt32(3), intstr.FromInt32(2)).Obj(),
			rss: []rsSpec{{"v1", 8, 8, 1}, {"v2", 5, 0, 2}}, scaledFrom: 10, want: map[string]int32{"v1": 11, "v2": 7}},
		{name: "scaling to zero mid-rollout empties every replicaset",
			d:   spectest.MakeDeployment().Image("v2").Replicas(0).Surge(intstr.FromInt32(3), intstr.FromInt32(2)).Obj(),
			rss: []rsSpec{{"v1", 8, 8, 1}, {"v2", 5, 0, 2}}, scaledFrom: 10, want: map[string]int32{"v1": 0, "v2": 0}},
		{name: "complete rollout reports NewReplicaSetAvailable",
			d: surge1().Obj(), rss: []rsSpec{{"v1", 0, 0, 1}, {"v2", 3, 3, 2}}, want: map[string]int32{"v1": 0, "v2": 3},
			progressing: "True/" + ReasonNewRSAvailable, available: "True/" + ReasonMinimumAvailable},
		{name: "no progress past the deadline is ProgressDeadlineExceeded",
			d: progressingSince(surge1().Obj(), now.Unix()-700), rss: []rsSpec{{"v1", 3, 3, 1}, {"v2", 1, 0, 2}},
			want: map[string]int32{"v1": 3, "v2": 1}, progressing: "False/" + ReasonTimedOut},
		{name: "within the deadline it keeps its condition",
			d: progressingSince(surge1().Obj(), now.Unix()-10), rss: []rsSpec{{"v1", 3, 3, 1}, {"v2", 1, 0, 2}},
			want: map[string]int32{"v1": 3, "v2": 1}, progressing: "True/" + ReasonRSUpdated},
		{name: "paused: no new replicaset for a new template",
			d: surge1().Paused(true).Obj(), rss: []rsSpec{{"v1", 3, 3, 1}}, want: map[string]int32{"v1": 3},
			progressing: "Unknown/" + ReasonPaused},
		{name: "paused still scales",
			d: surge1().Paused(true).Replicas(5).Obj(), rss: []rsSpec{{"v1", 3, 3, 1}}, want: map[string]int32{"v1": 5}},
		{name: "recreate scales old to zero first",
			d: spectest.MakeDeployment().Image("v2").Recreate().Obj(), rss: []rsSpec{{"v1", 3, 3, 1}}, want: map[string]int32{"v1": 0}},
		{name: "recreate waits for old pods to end",
			d: spectest.MakeDeployment().Image("v2").Recreate().Obj(), rss: []rsSpec{{"v1", 0, 0, 1}}, oldPods: true, want: map[string]int32{"v1": 0}},
		{name: "recreate creates the new one at full size once old pods are gone",
			d: spectest.MakeDeployment().Image("v2").Recreate().Obj(), rss: []rsSpec{{"v1", 0, 0, 1}}, want: map[string]int32{"v1": 0, "v2": 3}, wantCreate: true, wantRevision: "2"},
		{name: "rollback: an old template becomes new with the next revision",
			d: spectest.MakeDeployment().Image("v1").Obj(), rss: []rsSpec{{"v1", 0, 0, 1}, {"v2", 3, 3, 2}}, want: map[string]int32{"v1": 1, "v2": 3}, wantRevision: "3"},
		{name: "history beyond revisionHistoryLimit is deleted, oldest revision first",
			d: surge1().HistoryLimit(1).Obj(), rss: []rsSpec{{"v0", 0, 0, 1}, {"v1", 0, 0, 2}, {"va", 0, 0, 3}, {"v2", 3, 3, 4}},
			want: map[string]int32{"v0": 0, "v1": 0, "va": 0, "v2": 3}, wantDeleted: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rss []*appsv1.ReplicaSet
			for i, s := range tc.rss {
				rs := rsFor(tc.d, s.img, s.replicas, s.available, s.rev, int64(1000+i))
				if tc.scaledFrom != 0 {
					before := tc.d.DeepCopy()
					before.Spec.Replicas = &tc.scaledFrom
					setReplicasAnnotations(rs, before)
				}
				rss = append(rss, rs)
			}
			d := tc.d
			// The status the last sync wrote for these ReplicaSets: no
			// progress unless the step makes some.
			var cur *appsv1.ReplicaSet
			for _, rs := range rss {
				if EqualIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
					cur = rs
				}
			}
			conds := d.Status.Conditions
			d.Status = calculateStatus(d, rss, cur, now)
			d.Status.Conditions = conds
			if tc.wantDeleted > 0 {
				// The cleanup runs on a complete rollout.
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}
			}
			step, err := Reconcile(Input{Deployment: d, ReplicaSets: rss, OldPodsRunning: tc.oldPods, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			got := replicasByImage(step, rss)
			for img, n := range tc.want {
				if got[img] != n {
					t.Fatalf("replicas by image %v, want %v", got, tc.want)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("replicas by image %v, want %v", got, tc.want)
			}
			if (step.Create != nil) != tc.wantCreate {
				t.Fatalf("create %v, want %v", step.Create, tc.wantCreate)
			}
			if step.Create != nil {
				h := step.Create.Labels[HashLabel]
				if h == "" || step.Create.Name != d.Name+"-"+h || step.Create.Spec.Selector.MatchLabels[HashLabel] != h ||
					step.Create.Spec.Template.Labels[HashLabel] != h || metav1.GetControllerOf(step.Create).UID != d.UID {
					t.Fatalf("created replicaset %+v", step.Create.ObjectMeta)
				}
			}
			if len(step.Delete) != tc.wantDeleted {
				t.Fatalf("deleted %d, want %d", len(step.Delete), tc.wantDeleted)
			}
			for i, rs := range step.Delete {
				if Revision(rs) != int64(i+1) {
					t.Fatalf("deleted revision %d at %d", Revision(rs), i)
				}
			}
			if tc.wantRevision != "" && step.Revision != tc.wantRevision {
				t.Fatalf("revision %q, want %q", step.Revision, tc.wantRevision)
			}
			if tc.progressing != "" && cond(step.Status, appsv1.DeploymentProgressing) != tc.progressing {
				t.Fatalf("Progressing %q, want %q", cond(step.Status, appsv1.DeploymentProgressing), tc.progressing)
			}
			if tc.available != "" && cond(step.Status, appsv1.DeploymentAvailable) != tc.available {
				t.Fatalf("Available %q, want %q", cond(step.Status, appsv1.DeploymentAvailable), tc.available)
			}
		})
	}
}

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		replicas             int32
		surge, unavail       intstr.IntOrString
		wantSurge, wantUnavl int32
	}{
		{"25% of 3 rounds surge up and unavailable down", 3, intstr.FromString("25%"), intstr.FromString("25%"), 1, 0},
		{"25% of 10", 10, intstr.FromString("25%"), intstr.FromString("25%"), 3, 2},
		{"both zero allows one unavailable", 3, intstr.FromInt32(0), intstr.FromInt32(0), 0, 1},
		{"absolute values", 5, intstr.FromInt32(2), intstr.FromInt32(1), 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := spectest.MakeDeployment().Replicas(tc.replicas).Surge(tc.surge, tc.unavail).Obj()
			s, u, err := ResolveFenceposts(d)
			if err != nil || s != tc.wantSurge || u != tc.wantUnavl {
				t.Fatalf("ResolveFenceposts = %d, %d, %v; want %d, %d", s, u, err, tc.wantSurge, tc.wantUnavl)
			}
		})
	}
	bad := spectest.MakeDeployment().Surge(intstr.FromString("lots"), intstr.FromInt32(0)).Obj()
	if _, err := Reconcile(Input{Deployment: bad, Now: now}); err == nil {
		t.Fatal("a malformed maxSurge must be an error")
	}
}

func TestTemplateHash(t *testing.T) {
	a := spectest.MakeDeployment().Image("v1").Obj()
	b := spectest.MakeDeployment().Image("v2").Obj()
	if TemplateHash(&a.Spec.Template, nil) != TemplateHash(&a.Spec.Template, nil) {
		t.Fatal("hash not stable")
	}
	if TemplateHash(&a.Spec.Template, nil) == TemplateHash(&b.Spec.Template, nil) {
		t.Fatal("different templates, same hash")
	}
	one := int32(1)
	if TemplateHash(&a.Spec.Template, nil) == TemplateHash(&a.Spec.Template, &one) {
		t.Fatal("collisionCount does not change the hash")
	}
	labelled := a.Spec.Template.DeepCopy()
	labelled.Labels[HashLabel] = "abc"
	if !EqualIgnoreHash(labelled, &a.Spec.Template) || TemplateHash(labelled, nil) != TemplateHash(&a.Spec.Template, nil) {
		t.Fatal("the hash label must be ignored")
	}
	if EqualIgnoreHash(&a.Spec.Template, &b.Spec.Template) {
		t.Fatal("different images compare equal")
	}
}
