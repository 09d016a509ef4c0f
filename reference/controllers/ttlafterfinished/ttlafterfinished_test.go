package ttlafterfinished

import (
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpiry(t *testing.T) {
	finished := time.Unix(1000, 0)
	job := func(ttl *int32, conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ttl}, Status: batchv1.JobStatus{Conditions: conds}}
	}
	ttl := func(s int32) *int32 { return &s }
	done := func(typ batchv1.JobConditionType, st corev1.ConditionStatus, at time.Time) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: st, LastTransitionTime: metav1.NewTime(at)}
	}
	now := metav1.Now()
	deleting := job(ttl(1), done(batchv1.JobComplete, corev1.ConditionTrue, finished))
	deleting.DeletionTimestamp = &now
	for _, tc := range []struct {
		name    string
		job     *batchv1.Job
		want    time.Time
		ok      bool
		wantErr error
	}{
		{"complete job expires ttl after finishing", job(ttl(30), done(batchv1.JobComplete, corev1.ConditionTrue, finished)), finished.Add(30 * time.Second), true, nil},
		{"failed job too", job(ttl(0), done(batchv1.JobFailed, corev1.ConditionTrue, finished)), finished, true, nil},
		{"no ttl: never", job(nil, done(batchv1.JobComplete, corev1.ConditionTrue, finished)), time.Time{}, false, nil},
		{"running job: not yet", job(ttl(30), done(batchv1.JobSuspended, corev1.ConditionTrue, finished)), time.Time{}, false, nil},
		{"a False Complete condition is not finished", job(ttl(30), done(batchv1.JobComplete, corev1.ConditionFalse, finished)), time.Time{}, false, nil},
		{"being deleted: not ours", deleting, time.Time{}, false, nil},
		{"finished without a time is malformed", job(ttl(30), done(batchv1.JobComplete, corev1.ConditionTrue, time.Time{})), time.Time{}, false, ErrNoFinishTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok, err := Expiry(tc.job)
			if !errors.Is(err, tc.wantErr) || ok != tc.ok || !at.Equal(tc.want) {
				t.Fatalf("Expiry = %v, %v, %v; want %v, %v, %v", at, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}
