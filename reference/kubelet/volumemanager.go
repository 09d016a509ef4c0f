package kubelet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// podDir is where a pod's volumes live: ROOT/pods/UID, as upstream's
// /var/lib/kubelet/pods/UID.
func (k *Kubelet) podDir(uid types.UID) string {
	return filepath.Join(k.cfg.RootDir, "pods", string(uid))
}

// setUpVolumes makes every supported volume of pod ready on the node and
// returns their host directories by name: emptyDir directories (a tmpfs
// for medium Memory, sized by sizeLimit), hostPath paths (created or
// checked as their type says), configMap, secret, downwardAPI and
// projected contents (service account tokens from the TokenRequest API)
// written atomically (refreshed when they changed). It is idempotent.
func (k *Kubelet) setUpVolumes(ctx context.Context, pod *corev1.Pod, podIPs []string) (map[string]string, error) {
	dirs := map[string]string{}
	ec := EnvContext{PodIPs: podIPs, HostIPs: k.hostIPs(), Objects: apiObjects{ctx: ctx, client: k.client}, IsNotFound: apierrors.IsNotFound,
		Token: func(pod *corev1.Pod, audience string, exp int64) (string, error) {
			return k.tokens.get(ctx, pod, audience, exp)
		}}
	for _, v := range pod.Spec.Volumes {
		dir, ok := VolumeDir(k.podDir(pod.UID), v)
		if !ok {
			continue
		}
		var err error
		switch {
		case v.EmptyDir != nil:
			err = setUpEmptyDir(dir, v.EmptyDir)
		case v.HostPath != nil:
			err = setUpHostPath(v.HostPath)
		default:
			var files map[string]VolumeFile
			if files, err = VolumeFiles(pod, v, ec); err == nil {
				_, err = WriteAtomic(dir, files)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", v.Name, err)
		}
		dirs[v.Name] = dir
	}
	return dirs, nil
}

func setUpEmptyDir(dir string, e *corev1.EmptyDirVolumeSource) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil { // upstream's emptyDir mode
		return err
	}
	if e.Medium != corev1.StorageMediumMemory {
		return nil
	}
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		return err
	}
	opts := "mode=0777"
	if e.SizeLimit != nil && !e.SizeLimit.IsZero() {
		opts += fmt.Sprintf(",size=%d", e.SizeLimit.Value())
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("tmpfs on %s: %w", dir, err)
	}
	return nil
}

func setUpHostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	st, err := os.Stat(h.Path)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return os.MkdirAll(h.Path, 0o755)
		}
		if err == nil && !st.IsDir() {
			return fmt.Errorf("hostPath %s is not a directory", h.Path)
		}
		return err
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if err == nil && st.IsDir() {
			return fmt.Errorf("hostPath %s is a directory", h.Path)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %s: %w", h.Path, err)
	}
	want := map[corev1.HostPathType]os.FileMode{
		corev1.HostPathDirectory: os.ModeDir, corev1.HostPathSocket: os.ModeSocket,
		corev1.HostPathCharDev: os.ModeCharDevice | os.ModeDevice, corev1.HostPathBlockDev: os.ModeDevice,
	}
	switch t {
	case corev1.HostPathFile:
		if !st.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", h.Path)
		}
	default:
		if m, ok := want[t]; ok && st.Mode()&m != m {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", h.Path, t)
		}
	}
	return nil
}

// isMountPoint reports whether dir is a mount point (in /proc/self/mountinfo).
func isMountPoint(dir string) (bool, error) {
	mounts, err := mountPointsUnder(dir)
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m == dir {
			return true, nil
		}
	}
	return false, nil
}

// mountPointsUnder lists the mount points at or below dir, deepest first.
func mountPointsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, sc.Err()
}

func unescapeMountPath(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// cleanUpPodDir unmounts what is mounted below the pod's directory
// (memory emptyDirs) and removes it.
func (k *Kubelet) cleanUpPodDir(uid types.UID) error {
	k.tokens.forget(uid)
	dir := k.podDir(uid)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mounts, err := mountPointsUnder(dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}
