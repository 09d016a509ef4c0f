package imagestore

import (
	"errors"
	"testing"

	"github.com/kubelab/kubelab/spec"
)

func TestNormalizeRef(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/busybox", "docker.io/library/busybox:latest"},
		{"kubelab/workload:v1", "docker.io/kubelab/workload:v1"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"},
		{"localhost/pause", "localhost/pause:latest"},
		{"localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"},
		{"busybox@" + d, "docker.io/library/busybox@" + d},
		{"busybox:1.36@" + d, "docker.io/library/busybox@" + d},
		{"my_app-x.y", "docker.io/library/my_app-x.y:latest"},
	} {
		got, err := NormalizeRef(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeRefInvalid(t *testing.T) {
	for _, in := range []string{
		"", "Busybox", "busybox:", ":tag", "busybox@sha256:xyz", "a//b", "-a", "a/B", "busybox:" + string(make([]byte, 130)),
		"busybox:bad tag", "/busybox",
	} {
		if got, err := NormalizeRef(in); !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("NormalizeRef(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func FuzzNormalizeRef(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c", "localhost:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "Busybox", "::", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := NormalizeRef(in)
		if err != nil {
			if !errors.Is(err, spec.ErrInvalid) {
				t.Fatalf("NormalizeRef(%q) error %v does not wrap ErrInvalid", in, err)
			}
			return
		}
		again, err := NormalizeRef(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeRef not idempotent: %q -> %q -> %q, %v", in, n, again, err)
		}
	})
}
