package controllers_test

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
)

// TestTTLAfterFinished: a finished Job whose TTL passed is deleted; one
// whose TTL has not passed stays.
func TestTTLAfterFinished(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) {
		// The job is deleted in the foreground: the collector finishes it.
		c.Controllers = []string{"ttl-after-finished", "garbagecollector"}
	})
	ctx := context.Background()
	const ns = "jobs"
	newNamespace(t, cs, ns)
	for name, ttl := range map[string]int32{"expired": 5, "fresh": 3600} {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: batchv1.JobSpec{TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
		created, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// As a job controller would report a job that succeeded a minute ago.
		ago := metav1.NewTime(time.Now().Add(-time.Minute))
		created.Status.StartTime, created.Status.CompletionTime = &ago, &ago
		created.Status.Succeeded = 1
		created.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: ago},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: ago}}
		if _, err := cs.BatchV1().Jobs(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "expired job deleted", func(ctx context.Context) (bool, error) {
		_, err := cs.BatchV1().Jobs(ns).Get(ctx, "expired", metav1.GetOptions{})
		return err != nil, nil
	})
	if _, err := cs.BatchV1().Jobs(ns).Get(ctx, "fresh", metav1.GetOptions{}); err != nil {
		t.Fatalf("job within its TTL deleted: %v", err)
	}
}
