package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/apiserver/pki"
	"github.com/kubelab/kubelab/reference/controllers"
)

func TestReplicationController(t *testing.T) {
	api := apiservertest.StartSecure(t, nil)
	cs := api.Client
	startManager(t, api.ClientFor(t, pki.ControllerManagerIdentity()), func(c *controllers.Config) { c.Controllers = []string{"replicationcontroller"} })
	ctx := context.Background()
	const ns = "rc"
	newNamespace(t, cs, ns)
	kubelet(t, cs, ns)
	two := int32(2)
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Spec: corev1.ReplicationControllerSpec{
		Replicas: &two, Selector: map[string]string{"app": "legacy"},
		Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "legacy"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}}}
	if _, err := cs.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 available replicas", func(ctx context.Context) (bool, error) {
		got, err := cs.CoreV1().ReplicationControllers(ns).Get(ctx, "legacy", metav1.GetOptions{})
		return err == nil && got.Status.AvailableReplicas == 2 && got.Status.ObservedGeneration == got.Generation, nil
	})
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("%d pods (%v), want 2", len(pods.Items), err)
	}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "ReplicationController" || ref.APIVersion != "v1" || ref.Name != "legacy" {
			t.Fatalf("pod %s controller %+v", p.Name, ref)
		}
	}
}
