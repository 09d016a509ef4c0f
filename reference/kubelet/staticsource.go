package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultFileCheckFrequency is how often the static pod directory is read
// (upstream's fileCheckFrequency).
const DefaultFileCheckFrequency = 20 * time.Second

// staticLoop reads the static pod directory every FileCheckFrequency
// until ctx ends.
func (k *Kubelet) staticLoop(ctx context.Context) {
	t := time.NewTicker(k.cfg.FileCheckFrequency)
	defer t.Stop()
	for {
		k.scanManifests(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scanManifests reads every *.yaml, *.yml and *.json file of the static
// pod directory (hidden files are skipped, as upstream), replaces the set
// of static pods, and kicks the workers of pods that appeared, changed
// (a new manifest is a new UID) or went. A file that does not parse is
// logged and skipped.
func (k *Kubelet) scanManifests(ctx context.Context) {
	entries, err := os.ReadDir(k.cfg.StaticPodPath)
	if err != nil && !os.IsNotExist(err) {
		k.log.Warn("static pods", "dir", k.cfg.StaticPodPath, "err", err)
		return
	}
	cur := map[types.UID]*corev1.Pod{}
	for _, e := range entries {
		n := e.Name()
		ext := filepath.Ext(n)
		if e.IsDir() || strings.HasPrefix(n, ".") || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(k.cfg.StaticPodPath, n)
		data, err := os.ReadFile(path)
		if err != nil {
			k.log.Warn("static pod", "file", path, "err", err)
			continue
		}
		p, err := StaticPod(data, path, k.cfg.NodeName)
		if err != nil {
			k.log.Warn("static pod", "file", path, "err", err)
			continue
		}
		cur[p.UID] = p
	}
	k.mu.Lock()
	prev := k.static
	k.static = cur
	k.mu.Unlock()
	for uid, p := range cur {
		if _, ok := prev[uid]; !ok {
			k.kick(ctx, uid, p.Namespace, p.Name)
		}
	}
	for uid, p := range prev {
		if _, ok := cur[uid]; !ok {
			k.kick(ctx, uid, p.Namespace, p.Name)
		}
	}
}

// staticPod returns the static pod uid, or nil.
func (k *Kubelet) staticPod(uid types.UID) *corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.static[uid]
}

// mirror returns the mirror pod in the API of the static pod with hash
// uid at namespace/name, or nil.
func (k *Kubelet) mirror(namespace, name string, uid types.UID) *corev1.Pod {
	p, err := k.pods.Pods(namespace).Get(name)
	if err != nil || mirrorOf(p) != string(uid) {
		return nil
	}
	return p
}

// syncMirror makes the API show static pod: it creates the mirror pod,
// and replaces a mirror of another manifest, or one being deleted (a
// mirror pod cannot be deleted while its static pod exists, as upstream).
func (k *Kubelet) syncMirror(ctx context.Context, static *corev1.Pod) {
	pods := k.client.CoreV1().Pods(static.Namespace)
	cur, err := k.pods.Pods(static.Namespace).Get(static.Name)
	if err == nil {
		if mirrorOf(cur) == string(static.UID) && cur.DeletionTimestamp == nil {
			return
		}
		if mirrorOf(cur) == "" {
			k.log.Warn("a pod that is no mirror pod has the static pod's name", "pod", static.Namespace+"/"+static.Name)
			return
		}
		if err := pods.Delete(ctx, cur.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0)),
			Preconditions: metav1.NewUIDPreconditions(string(cur.UID))}); err != nil && !apierrors.IsNotFound(err) {
			k.log.Warn("mirror pod", "pod", static.Namespace+"/"+static.Name, "err", err)
			return
		}
	}
	if _, err := pods.Create(ctx, MirrorPod(static, k.node.Load()), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
		k.log.Warn("mirror pod", "pod", static.Namespace+"/"+static.Name, "err", err)
	}
}

// deleteMirror deletes the mirror pod of the static pod with hash uid.
func (k *Kubelet) deleteMirror(ctx context.Context, namespace, name string, uid types.UID) {
	m := k.mirror(namespace, name, uid)
	if m == nil {
		return
	}
	err := k.client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0)),
		Preconditions: metav1.NewUIDPreconditions(string(m.UID))})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		k.log.Warn("mirror pod", "pod", namespace+"/"+name, "err", err)
	}
}
