package kubelet

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestVolumeFiles(t *testing.T) {
	objs := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"cm": {Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"bin": {0, 1}}}},
		secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"pw": []byte("x")}}},
	}
	ec := EnvContext{PodIPs: []string{"10.0.0.5"}, Objects: objs, IsNotFound: func(err error) bool { return errors.Is(err, errMissing) }}
	mode := func(m int32) *int32 { return &m }
	yes := true
	pod := testPod("a")
	pod.Labels = map[string]string{"app": "web", "tier": "front"}
	cmVol := func(src corev1.ConfigMapVolumeSource) corev1.Volume {
		return corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &src}}
	}
	ref := corev1.LocalObjectReference{Name: "cm"}
	tests := []struct {
		name    string
		vol     corev1.Volume
		want    map[string]VolumeFile
		wantErr bool
	}{
		{"configMap: every key, 0644", cmVol(corev1.ConfigMapVolumeSource{LocalObjectReference: ref}),
			map[string]VolumeFile{"a": {[]byte("1"), 0o644}, "b": {[]byte("2"), 0o644}, "bin": {[]byte{0, 1}, 0o644}}, false},
		{"configMap items with modes", cmVol(corev1.ConfigMapVolumeSource{LocalObjectReference: ref, DefaultMode: mode(0o600),
			Items: []corev1.KeyToPath{{Key: "a", Path: "dir/a.txt"}, {Key: "b", Path: "b", Mode: mode(0o400)}}}),
			map[string]VolumeFile{"dir/a.txt": {[]byte("1"), 0o600}, "b": {[]byte("2"), 0o400}}, false},
		{"configMap item with a missing key", cmVol(corev1.ConfigMapVolumeSource{LocalObjectReference: ref, Items: []corev1.KeyToPath{{Key: "zz", Path: "z"}}}), nil, true},
		{"missing configMap", cmVol(corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}), nil, true},
		{"missing optional configMap is empty", cmVol(corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: &yes}),
			map[string]VolumeFile{}, false},
		{"secret", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
			map[string]VolumeFile{"pw": {[]byte("x"), 0o644}}, false},
		{"downwardAPI", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}},
		}}}}, map[string]VolumeFile{"name": {[]byte("p"), 0o644}, "labels": {[]byte("app=\"web\"\ntier=\"front\""), 0o644}, "ip": {[]byte("10.0.0.5"), 0o644}}, false},
	}
	exp := int64(600)
	tests = append(tests, struct {
		name    string
		vol     corev1.Volume
		want    map[string]VolumeFile
		wantErr bool
	}{"projected: token, configMap item, downward API", corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: &exp}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref, Items: []corev1.KeyToPath{{Key: "a", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}}, map[string]VolumeFile{"token": {[]byte("tok:vault:600"), 0o600}, "ca.crt": {[]byte("1"), 0o644}, "namespace": {[]byte("ns"), 0o644}}, false})
	ec.Token = func(_ *corev1.Pod, aud string, exp int64) (string, error) {
		return "tok:" + aud + ":" + strconv.FormatInt(exp, 10), nil
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VolumeFiles(pod, tc.vol, ec)
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("err %v, want error %v (ErrConfig)", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("files %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContainerMounts(t *testing.T) {
	pod := testPod("a")
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
	}
	dirs := map[string]string{"scratch": "/pods/u/scratch", "cfg": "/pods/u/cfg"}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp/s"}, {Name: "scratch", MountPath: "/data", SubPath: "d/e"}, {Name: "cfg", MountPath: "/etc/cfg"}}
	ms, err := ContainerMounts(pod, c, dirs)
	if err != nil {
		t.Fatal(err)
	}
	got := [][3]any{}
	for _, m := range ms {
		got = append(got, [3]any{m.ContainerPath, m.HostPath, m.Readonly})
	}
	want := [][3]any{{"/tmp/s", "/pods/u/scratch", false}, {"/data", "/pods/u/scratch/d/e", false}, {"/etc/cfg", "/pods/u/cfg", true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts %v, want %v", got, want)
	}
	for _, bad := range []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}, {Name: "scratch", MountPath: "/x", SubPath: "../etc"}, {Name: "scratch", MountPath: "/x", SubPath: "/abs"}} {
		c.VolumeMounts = []corev1.VolumeMount{bad}
		if _, err := ContainerMounts(pod, c, dirs); !errors.Is(err, ErrConfig) {
			t.Errorf("mount %+v: %v, want ErrConfig", bad, err)
		}
	}
}

func readVolume(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v1 := map[string]VolumeFile{"a": {[]byte("1"), 0o644}, "b": {[]byte("2"), 0o600}}
	if wrote, err := WriteAtomic(dir, v1); err != nil || !wrote {
		t.Fatalf("first write: %v, %v", wrote, err)
	}
	if got := readVolume(t, dir); !reflect.DeepEqual(got, map[string]string{"a": "1", "b": "2"}) {
		t.Errorf("after the first write: %v", got)
	}
	if st, err := os.Stat(filepath.Join(dir, "b")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("b's mode: %v, %v", st, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "a")); err != nil || target != filepath.Join(dataLink, "a") {
		t.Errorf("a is not a link through %s: %q, %v", dataLink, target, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))
	if wrote, err := WriteAtomic(dir, v1); err != nil || wrote {
		t.Errorf("the same content was written again: %v, %v", wrote, err)
	}
	v2 := map[string]VolumeFile{"a": {[]byte("one"), 0o644}, "c": {[]byte("3"), 0o644}}
	if wrote, err := WriteAtomic(dir, v2); err != nil || !wrote {
		t.Fatalf("second write: %v, %v", wrote, err)
	}
	if got := readVolume(t, dir); !reflect.DeepEqual(got, map[string]string{"a": "one", "c": "3"}) {
		t.Errorf("after the update: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous version %s is left: %v", first, err)
	}
	if _, err := WriteAtomic(dir, map[string]VolumeFile{"../escape": {}}); !errors.Is(err, ErrConfig) {
		t.Errorf("a path out of the volume: %v, want ErrConfig", err)
	}
}

func TestSetUpHostPath(t *testing.T) {
	dir := t.TempDir()
	typ := func(t corev1.HostPathType) *corev1.HostPathType { return &t }
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		typ  *corev1.HostPathType
		ok   bool
	}{
		{filepath.Join(dir, "new"), typ(corev1.HostPathDirectoryOrCreate), true},
		{filepath.Join(dir, "newfile"), typ(corev1.HostPathFileOrCreate), true},
		{dir, typ(corev1.HostPathDirectory), true},
		{file, typ(corev1.HostPathDirectory), false},
		{file, typ(corev1.HostPathFile), true},
		{filepath.Join(dir, "absent"), typ(corev1.HostPathFile), false},
		{filepath.Join(dir, "absent"), nil, true},
	}
	for _, tc := range tests {
		err := setUpHostPath(&corev1.HostPathVolumeSource{Path: tc.path, Type: tc.typ})
		if (err == nil) != tc.ok {
			t.Errorf("%s (%v): %v, want ok %v", tc.path, tc.typ, err, tc.ok)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "new")); err != nil || !st.IsDir() {
		t.Errorf("DirectoryOrCreate made no directory: %v", err)
	}
}
