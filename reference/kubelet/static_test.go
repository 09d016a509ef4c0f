package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const manifest = `
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  labels: {tier: control-plane}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5
`

func TestStaticPod(t *testing.T) {
	p, err := StaticPod([]byte(manifest), "/etc/manifests/etcd.yaml", "node1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "etcd-node1" || p.Namespace != "default" || p.Spec.NodeName != "node1" || p.Labels["tier"] != "control-plane" {
		t.Errorf("pod %s/%s on %q labels %v", p.Namespace, p.Name, p.Spec.NodeName, p.Labels)
	}
	if p.UID == "" || p.Annotations[AnnotationConfigHash] != string(p.UID) || p.Annotations[AnnotationConfigSource] != "file" {
		t.Errorf("uid %q annotations %v", p.UID, p.Annotations)
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || len(p.Spec.Tolerations) != 1 || p.Spec.Tolerations[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("defaults: restartPolicy %q tolerations %v", p.Spec.RestartPolicy, p.Spec.Tolerations)
	}
	again, _ := StaticPod([]byte(manifest), "/etc/manifests/etcd.yaml", "node1")
	other, _ := StaticPod([]byte(manifest), "/etc/manifests/etcd.yaml", "node2")
	changed, _ := StaticPod([]byte(manifest+"    args: [--v=2]\n"), "/etc/manifests/etcd.yaml", "node1")
	if again.UID != p.UID || other.UID == p.UID || changed.UID == p.UID {
		t.Errorf("UIDs: same manifest %v, other node %v, changed manifest %v", again.UID == p.UID, other.UID == p.UID, changed.UID == p.UID)
	}
	for name, bad := range map[string]string{
		"not a pod":     "kind: Service\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i}]}",
		"no containers": "metadata: {name: x}",
		"unknown field": "metadata: {name: x}\nspec: {containers: [{name: c, image: i}], bogus: 1}",
		"not YAML":      "{",
	} {
		if _, err := StaticPod([]byte(bad), "f", "n"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMirrorPod(t *testing.T) {
	p, _ := StaticPod([]byte(manifest), "f", "node1")
	m := MirrorPod(p, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", UID: "node-uid"}})
	if m.UID != "" || mirrorOf(m) != string(p.UID) || len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != "node-uid" {
		t.Errorf("mirror %+v", m.ObjectMeta)
	}
	if mirrorOf(p) != "" {
		t.Error("the static pod itself looks like a mirror pod")
	}
}
