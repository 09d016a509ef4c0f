package kubelet

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Volume plugin directory names under a pod's volumes directory,
// upstream's.
const (
	volumeDirEmptyDir  = "kubernetes.io~empty-dir"
	volumeDirConfigMap = "kubernetes.io~configmap"
	volumeDirSecret    = "kubernetes.io~secret"
	volumeDirDownward  = "kubernetes.io~downward-api"
	volumeDirProjected = "kubernetes.io~projected"
)

// Default file modes of projected files, upstream's.
const (
	defaultConfigMapMode = 0o644
	defaultSecretMode    = 0o644
)

// VolumeFile is one file of a configMap, secret or downwardAPI volume.
type VolumeFile struct {
	// Data is the content.
	Data []byte
	// Mode is the permission bits.
	Mode os.FileMode
}

// VolumeDir is where volume name of pod lives under podDir, or, for a
// hostPath volume, the host path itself. ok is false for volume kinds the
// kubelet does not support yet.
func VolumeDir(podDir string, v corev1.Volume) (dir string, ok bool) {
	switch {
	case v.EmptyDir != nil:
		return filepath.Join(podDir, "volumes", volumeDirEmptyDir, v.Name), true
	case v.ConfigMap != nil:
		return filepath.Join(podDir, "volumes", volumeDirConfigMap, v.Name), true
	case v.Secret != nil:
		return filepath.Join(podDir, "volumes", volumeDirSecret, v.Name), true
	case v.DownwardAPI != nil:
		return filepath.Join(podDir, "volumes", volumeDirDownward, v.Name), true
	case v.Projected != nil:
		return filepath.Join(podDir, "volumes", volumeDirProjected, v.Name), true
	case v.HostPath != nil:
		return v.HostPath.Path, true
	}
	return "", false
}

// ContainerMounts are the CRI mounts of container c: each volumeMount's
// volume directory (dirs, by volume name), joined with its subPath, at its
// mountPath. configMap, secret and downwardAPI volumes are read-only, as
// upstream mounts them.
func ContainerMounts(pod *corev1.Pod, c *corev1.Container, dirs map[string]string) ([]*runtimeapi.Mount, error) {
	kinds := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		kinds[v.Name] = v
	}
	var out []*runtimeapi.Mount
	for _, m := range c.VolumeMounts {
		dir, ok := dirs[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: no such volume, or a kind not supported: %w", m.Name, ErrConfig)
		}
		host := dir
		if m.SubPath != "" {
			clean := path.Clean("/" + m.SubPath)
			if clean == "/" || strings.Contains(m.SubPath, "..") || path.IsAbs(m.SubPath) {
				return nil, fmt.Errorf("volumeMount %q: subPath %q must be a relative path inside the volume: %w", m.Name, m.SubPath, ErrConfig)
			}
			host = filepath.Join(dir, filepath.FromSlash(clean))
		}
		v := kinds[m.Name]
		ro := m.ReadOnly || v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
		out = append(out, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: ro})
	}
	return out, nil
}

// VolumeFiles computes the files of a configMap, secret or downwardAPI
// volume, as upstream: every key (or only the listed items, at their
// paths), with the item's mode, else defaultMode, else 0644. A missing
// object or key is an error wrapping ErrConfig unless the volume is
// optional (then it is empty). ec.Objects fetches the objects.
func VolumeFiles(pod *corev1.Pod, v corev1.Volume, ec EnvContext) (map[string]VolumeFile, error) {
	notFound := func(err error) bool { return ec.IsNotFound != nil && ec.IsNotFound(err) }
	mode := func(def int32, item *int32, dflt *int32) os.FileMode {
		switch {
		case item != nil:
			return os.FileMode(*item)
		case dflt != nil:
			return os.FileMode(*dflt)
		}
		return os.FileMode(def)
	}
	project := func(data map[string][]byte, items []corev1.KeyToPath, def int32, dflt *int32, opt bool, what string) (map[string]VolumeFile, error) {
		files := map[string]VolumeFile{}
		if len(items) == 0 {
			for k, d := range data {
				files[k] = VolumeFile{Data: d, Mode: mode(def, nil, dflt)}
			}
			return files, nil
		}
		for _, it := range items {
			d, ok := data[it.Key]
			if !ok {
				if opt {
					continue
				}
				return nil, fmt.Errorf("%s: key %q not found: %w", what, it.Key, ErrConfig)
			}
			files[it.Path] = VolumeFile{Data: d, Mode: mode(def, it.Mode, dflt)}
		}
		return files, nil
	}
	switch {
	case v.ConfigMap != nil:
		s := v.ConfigMap
		cm, err := ec.Objects.ConfigMap(pod.Namespace, s.Name)
		if err != nil {
			if notFound(err) && optional(s.Optional) {
				return map[string]VolumeFile{}, nil
			}
			return nil, fmt.Errorf("configmap %q: %w: %w", s.Name, ErrConfig, err)
		}
		data := map[string][]byte{}
		for k, d := range cm.Data {
			data[k] = []byte(d)
		}
		for k, d := range cm.BinaryData {
			data[k] = d
		}
		return project(data, s.Items, defaultConfigMapMode, s.DefaultMode, optional(s.Optional), "configmap "+s.Name)
	case v.Secret != nil:
		s := v.Secret
		sec, err := ec.Objects.Secret(pod.Namespace, s.SecretName)
		if err != nil {
			if notFound(err) && optional(s.Optional) {
				return map[string]VolumeFile{}, nil
			}
			return nil, fmt.Errorf("secret %q: %w: %w", s.SecretName, ErrConfig, err)
		}
		return project(sec.Data, s.Items, defaultSecretMode, s.DefaultMode, optional(s.Optional), "secret "+s.SecretName)
	case v.Projected != nil:
		return projectedFiles(pod, v, ec)
	case v.DownwardAPI != nil:
		files := map[string]VolumeFile{}
		for _, it := range v.DownwardAPI.Items {
			var val string
			var err error
			switch {
			case it.FieldRef != nil && (it.FieldRef.FieldPath == "metadata.labels" || it.FieldRef.FieldPath == "metadata.annotations"):
				m := pod.Labels
				if it.FieldRef.FieldPath == "metadata.annotations" {
					m = pod.Annotations
				}
				val = formatMap(m)
			case it.FieldRef != nil:
				val, err = fieldValue(pod, it.FieldRef.FieldPath, ec)
			case it.ResourceFieldRef != nil:
				c := containerSpec(pod, it.ResourceFieldRef.ContainerName)
				if c == nil {
					return nil, fmt.Errorf("downwardAPI %q: no container %q: %w", it.Path, it.ResourceFieldRef.ContainerName, ErrConfig)
				}
				val, err = resourceValue(c, it.ResourceFieldRef)
			}
			if err != nil {
				return nil, fmt.Errorf("downwardAPI %q: %w", it.Path, err)
			}
			files[it.Path] = VolumeFile{Data: []byte(val), Mode: mode(defaultConfigMapMode, it.Mode, v.DownwardAPI.DefaultMode)}
		}
		return files, nil
	}
	return nil, nil
}

// formatMap renders labels or annotations as upstream's downward API does:
// sorted key="value" lines.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// projectedFiles merges a projected volume's sources into one set of
// files, as upstream: configMap, secret and downwardAPI sources as their
// own volumes would be (with the projected defaultMode), and
// serviceAccountToken sources as a token of the pod's service account
// (ec.Token) at their path, mode 0600 unless defaultMode says otherwise.
// Cluster trust bundles and pod certificates are not supported
// (ErrConfig).
func projectedFiles(pod *corev1.Pod, v corev1.Volume, ec EnvContext) (map[string]VolumeFile, error) {
	files := map[string]VolumeFile{}
	dm := v.Projected.DefaultMode
	add := func(fs map[string]VolumeFile, err error) error {
		if err != nil {
			return err
		}
		for p, f := range fs {
			files[p] = f
		}
		return nil
	}
	for _, src := range v.Projected.Sources {
		var err error
		switch {
		case src.ConfigMap != nil:
			c := src.ConfigMap
			err = add(VolumeFiles(pod, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: c.LocalObjectReference, Items: c.Items, Optional: c.Optional, DefaultMode: dm}}}, ec))
		case src.Secret != nil:
			c := src.Secret
			err = add(VolumeFiles(pod, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: c.Name, Items: c.Items, Optional: c.Optional, DefaultMode: dm}}}, ec))
		case src.DownwardAPI != nil:
			err = add(VolumeFiles(pod, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: src.DownwardAPI.Items, DefaultMode: dm}}}, ec))
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			if ec.Token == nil {
				return nil, fmt.Errorf("projected volume %q: no service account tokens here: %w", v.Name, ErrConfig)
			}
			exp := int64(3600)
			if t.ExpirationSeconds != nil {
				exp = *t.ExpirationSeconds
			}
			tok, terr := ec.Token(pod, t.Audience, exp)
			if terr != nil {
				return nil, fmt.Errorf("projected volume %q: service account token: %w", v.Name, terr)
			}
			mode := os.FileMode(0o600)
			if dm != nil {
				mode = os.FileMode(*dm)
			}
			files[t.Path] = VolumeFile{Data: []byte(tok), Mode: mode}
		default:
			return nil, fmt.Errorf("projected volume %q: source kind not supported: %w", v.Name, ErrConfig)
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}
