package imagelocality_test

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelab/kubelab/plugins/scheduler/imagelocality"
	"github.com/kubelab/kubelab/plugins/scheduler/internal/schedtest"
	"github.com/kubelab/kubelab/spec/spectest"
)

const mb = 1024 * 1024

func TestScore(t *testing.T) {
	nginx := corev1.ContainerImage{Names: []string{"nginx:latest", "nginx@sha256:abc"}, SizeBytes: 500 * mb}
	big := corev1.ContainerImage{Names: []string{"big:1"}, SizeBytes: 2000 * mb}
	snap := spectest.Snapshot([]*corev1.Node{
		spectest.MakeNode().Name("n1").Images(nginx, big).Obj(),
		spectest.MakeNode().Name("n2").Images(nginx).Obj(),
		spectest.MakeNode().Name("n3").Obj(),
	})
	pl, err := imagelocality.Plugin().New(nil, &schedtest.Handle{Snap: snap})
	if err != nil {
		t.Fatal(err)
	}
	pod := spectest.MakePod().Name("p").Obj()
	pod.Spec.Containers = []corev1.Container{{Name: "web", Image: "nginx"}, {Name: "job", Image: "big:1"}}
	// n1: 500MB×2/3 + 2000MB×1/3 = 1000MB of [23MB, 2000MB] → 49;
	// n2: 333MB → 15; n3: nothing → 0.
	want := map[string]int64{"n1": 49, "n2": 15, "n3": 0}
	if got := schedtest.RunScore(t, pl, pod, snap); !maps.Equal(got, want) {
		t.Errorf("scores = %v, want %v", got, want)
	}
	other := spectest.MakePod().Name("q").Obj()
	other.Spec.Containers[0].Image = "absent:2"
	if got := schedtest.RunScore(t, pl, other, snap); got != nil {
		t.Errorf("no node has the image: want Skip, got %v", got)
	}
	if imagelocality.NormalizedImageName("registry:5000/app") != "registry:5000/app:latest" || imagelocality.NormalizedImageName("app:v1") != "app:v1" {
		t.Errorf("NormalizedImageName mishandles registry ports or tags")
	}
}
