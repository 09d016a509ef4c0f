package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubelab/kubelab/reference/apiserver/apiservertest"
	"github.com/kubelab/kubelab/reference/controllers"
	"github.com/kubelab/kubelab/reference/controllers/endpointslice"
	"github.com/kubelab/kubelab/spec/spectest"
)

func TestEndpointSlicesFollowPods(t *testing.T) {
	api := apiservertest.Start(t, nil)
	cs := api.Client
	startManager(t, cs, func(c *controllers.Config) { c.Controllers = []string{"endpointslice"} })
	ctx := context.Background()
	const ns = "svc"
	newNamespace(t, cs, ns)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slices := func(ctx context.Context) []discoveryv1.EndpointSlice {
		l, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return nil
		}
		return l.Items
	}
	eventually(t, "placeholder slice", func(ctx context.Context) (bool, error) {
		s := slices(ctx)
		return len(s) == 1 && len(s[0].Endpoints) == 0 && s[0].Labels[discoveryv1.LabelManagedBy] == endpointslice.ControllerName, nil
	})
	for i, ready := range []bool{true, false} {
		p := spectest.MakePod().Name([]string{"ready", "unready"}[i]).Namespace(ns).Label("app", "web").Obj()
		p.UID = ""
		p.Spec.Containers[0].Image = "img"
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
		created, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Phase = corev1.PodRunning
		created.Status.PodIP = []string{"10.1.0.1", "10.1.0.2"}[i]
		created.Status.PodIPs = []corev1.PodIP{{IP: created.Status.PodIP}}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two endpoints with their conditions and the resolved port", func(ctx context.Context) (bool, error) {
		s := slices(ctx)
		if len(s) != 1 || len(s[0].Endpoints) != 2 || len(s[0].Ports) != 1 || *s[0].Ports[0].Port != 8080 {
			return false, nil
		}
		for _, ep := range s[0].Endpoints {
			if *ep.Conditions.Ready != (ep.TargetRef.Name == "ready") {
				return false, nil
			}
		}
		return true, nil
	})
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "ready", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted pod leaves the slice", func(ctx context.Context) (bool, error) {
		s := slices(ctx)
		return len(s) == 1 && len(s[0].Endpoints) == 1 && s[0].Endpoints[0].TargetRef.Name == "unready", nil
	})
}
