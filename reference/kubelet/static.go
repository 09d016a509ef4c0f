package kubelet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// Annotations of static and mirror pods, upstream's.
const (
	// AnnotationConfigSource says where a pod came from ("file", "api").
	AnnotationConfigSource = "kubernetes.io/config.source"
	// AnnotationConfigHash is a static pod's hash (also its UID).
	AnnotationConfigHash = "kubernetes.io/config.hash"
	// AnnotationConfigMirror marks a mirror pod, with its static pod's
	// hash.
	AnnotationConfigMirror = corev1.MirrorPodAnnotationKey
)

// StaticPod decodes a pod manifest (YAML or JSON) read from file as
// upstream's file source does: the pod is named NAME-NODE, placed in
// "default" unless it names a namespace, bound to node, tolerates every
// NoExecute taint, gets the pod defaults the kubelet relies on, and its
// UID is a hash of the manifest, the node and the file — so it changes
// exactly when the manifest does.
func StaticPod(data []byte, file, node string) (*corev1.Pod, error) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("static pod %s: %w", file, err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("static pod %s: kind %q, want Pod", file, pod.Kind)
	}
	if pod.Name == "" || len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("static pod %s: a name and containers are required", file)
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\x00%s\x00", node, file)
	sum.Write(data)
	hash := hex.EncodeToString(sum.Sum(nil))[:32]
	pod.Name = pod.Name + "-" + strings.ToLower(node)
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.UID = types.UID(hash)
	pod.ResourceVersion, pod.Generation = "", 0
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationConfigSource] = "file"
	pod.Annotations[AnnotationConfigHash] = hash
	pod.Spec.NodeName = node
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if pod.Spec.DNSPolicy == "" {
		pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if pod.Spec.SchedulerName == "" {
		pod.Spec.SchedulerName = corev1.DefaultSchedulerName
	}
	pod.Status = corev1.PodStatus{}
	return &pod, nil
}

// MirrorPod is the API object that shows static pod in the API server:
// a copy marked with AnnotationConfigMirror and owned by the Node.
func MirrorPod(static *corev1.Pod, node *corev1.Node) *corev1.Pod {
	m := static.DeepCopy()
	m.UID, m.ResourceVersion = "", ""
	m.Annotations[AnnotationConfigMirror] = static.Annotations[AnnotationConfigHash]
	if node != nil {
		m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptrTo(true)}}
	}
	return m
}

// mirrorOf reports the static pod hash a mirror pod stands for ("" when p
// is no mirror pod).
func mirrorOf(p *corev1.Pod) string {
	return p.Annotations[AnnotationConfigMirror]
}
