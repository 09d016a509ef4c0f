package ociimage

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names of kubelab's test images. kubelab.local is not a registry: these
// images only ever come from local archives.
const (
	// PauseImageName is the pause image: /pause (the workload binary, which
	// runs its pause mode under that name) as entrypoint.
	PauseImageName = "kubelab.local/pause:1.0"
	// WorkloadImageName is the workload image: entrypoint /workload, default
	// arguments "pause"; give a subcommand as the container's args.
	WorkloadImageName = "kubelab.local/workload:1.0"
	// BusyboxImageName is busybox from Debian's busybox-static, with a shell:
	// default command "sh".
	BusyboxImageName = "kubelab.local/busybox:1.0"
	// WebserverImageName is the workload image whose default arguments serve
	// HTTP on port 80 (netexec), for tests that expect a web server image
	// started without a command (critest's webServerTestImage).
	WebserverImageName = "kubelab.local/webserver:1.0"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// defaultPath is the PATH every test image sets.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BusyboxApplets are the applets the busybox image links to /bin/busybox.
var BusyboxApplets = []string{
	"[", "ash", "awk", "base64", "basename", "brctl", "cat", "chgrp", "chmod", "chown", "cp", "cut", "date", "dd", "df",
	"diff", "dirname", "du", "echo", "egrep", "env", "expr", "false", "fgrep", "find", "free", "grep", "gunzip",
	"gzip", "head", "hostname", "id", "ip", "kill", "killall", "less", "ln", "ls", "md5sum", "mkdir", "mkfifo",
	"mktemp", "more", "mount", "mv", "nc", "netstat", "nproc", "nslookup", "pidof", "ping", "printf", "ps",
	"pwd", "readlink", "realpath", "rm", "rmdir", "sed", "seq", "sh", "sha256sum", "sleep", "sort", "stat",
	"sync", "tail", "tar", "tee", "test", "timeout", "top", "touch", "tr", "true", "umount", "uname", "uniq",
	"uptime", "usleep", "vi", "watch", "wc", "wget", "which", "whoami", "xargs", "yes", "zcat",
}

// baseFiles are the files every test image has: users and groups for
// runAsUser tests, and a world-writable /tmp.
func baseFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Content: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Content: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/root", Mode: fs.ModeDir | 0o700},
	}
}

// BinaryImage describes an image holding the static binary at binary as
// /<its base name>, which is the entrypoint, with cmd as default arguments.
func BinaryImage(name, binary string, cmd ...string) (Spec, error) {
	if err := CheckStatic(binary); err != nil {
		return Spec{}, err
	}
	p := "/" + filepath.Base(binary)
	return Spec{
		Names:  []string{name},
		Files:  append(baseFiles(), File{Path: p, Mode: 0o755, Source: binary}),
		Config: v1.ImageConfig{Entrypoint: []string{p}, Cmd: cmd, Env: []string{defaultPath}, WorkingDir: "/"},
	}, nil
}

// WorkloadImage describes the workload image from the static workload
// binary at binary (tools/workload built with CGO_ENABLED=0).
func WorkloadImage(binary string) (Spec, error) {
	if err := CheckStatic(binary); err != nil {
		return Spec{}, err
	}
	return Spec{
		Names:  []string{WorkloadImageName},
		Files:  append(baseFiles(), File{Path: "/workload", Mode: 0o755, Source: binary}),
		Config: v1.ImageConfig{Entrypoint: []string{"/workload"}, Cmd: []string{"pause"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}, nil
}

// WebserverImage describes the web server image from the static workload
// binary at binary: the workload image running `netexec --http-port=80`.
func WebserverImage(binary string) (Spec, error) {
	s, err := WorkloadImage(binary)
	if err != nil {
		return Spec{}, err
	}
	s.Names = []string{WebserverImageName}
	s.Config.Cmd = []string{"netexec", "--http-port=80"}
	s.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	return s, nil
}

// PauseImage describes the pause image from the static workload binary at
// binary, installed as /pause: run under that name, it pauses.
func PauseImage(binary string) (Spec, error) {
	if err := CheckStatic(binary); err != nil {
		return Spec{}, err
	}
	return Spec{
		Names:  []string{PauseImageName},
		Files:  []File{{Path: "/pause", Mode: 0o755, Source: binary}},
		Config: v1.ImageConfig{Entrypoint: []string{"/pause"}, Env: []string{defaultPath}, WorkingDir: "/", StopSignal: "SIGTERM"},
	}, nil
}

// pgrepScript is the busybox image's /bin/pgrep: Debian's busybox-static
// has no pgrep applet, and critest's "execSync with timeout" spec runs
// `pgrep sleep` to check that a timed-out command was killed.
const pgrepScript = `#!/bin/sh
# pgrep PATTERN: the pids of the processes whose name matches the extended
# regular expression PATTERN (procps' pgrep without options); exit status 1
# when none does.
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
found=1
for d in /proc/[0-9]*; do
	pid=${d#/proc/}
	[ "$pid" = "$$" ] && continue
	{ read -r name <"$d/comm"; } 2>/dev/null || continue
	if echo "$name" | grep -Eq -- "$1"; then
		echo "$pid"
		found=0
	fi
done
exit $found
`

// BusyboxImage describes the busybox image from the static busybox at
// busybox (DefaultBusybox from Debian's busybox-static): /bin/busybox, a
// symlink in /bin for each of BusyboxApplets, /bin/pgrep (a shell script:
// the applet is missing), /usr/bin/env, and default command "sh".
func BusyboxImage(busybox string) (Spec, error) {
	if err := CheckStatic(busybox); err != nil {
		return Spec{}, fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	files := append(baseFiles(),
		File{Path: "/bin/busybox", Mode: 0o755, Source: busybox},
		File{Path: "/usr/bin/env", Mode: fs.ModeSymlink, Linkname: "/bin/busybox"},
		File{Path: "/home", Mode: fs.ModeDir | 0o755},
		File{Path: "/var/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		File{Path: "/bin/pgrep", Mode: 0o755, Content: []byte(pgrepScript)},
	)
	for _, a := range BusyboxApplets {
		files = append(files, File{Path: path.Join("/bin", a), Mode: fs.ModeSymlink, Linkname: "busybox"})
	}
	return Spec{
		Names:  []string{BusyboxImageName},
		Files:  files,
		Config: v1.ImageConfig{Cmd: []string{"sh"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}, nil
}

// Built is one archive BuildTestImages wrote.
type Built struct {
	// Name is the image's name.
	Name string
	// Path is the archive's path.
	Path string
	// Image is the built image (its ID, manifest digest and blobs).
	Image *Image
}

// BuildTestImages writes kubelab's test images as OCI archives into outDir
// (created when missing): pause.tar, workload.tar, webserver.tar and
// busybox.tar, from the static workload binary and the static busybox binary
// (DefaultBusybox when empty).
func BuildTestImages(outDir, workloadBinary, busybox string) ([]Built, error) {
	if busybox == "" {
		busybox = DefaultBusybox
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	type job struct {
		file string
		spec func() (Spec, error)
	}
	jobs := []job{
		{"pause.tar", func() (Spec, error) { return PauseImage(workloadBinary) }},
		{"workload.tar", func() (Spec, error) { return WorkloadImage(workloadBinary) }},
		{"webserver.tar", func() (Spec, error) { return WebserverImage(workloadBinary) }},
		{"busybox.tar", func() (Spec, error) { return BusyboxImage(busybox) }},
	}
	var out []Built
	for _, j := range jobs {
		s, err := j.spec()
		if err != nil {
			return nil, err
		}
		img, err := Build(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.file, err)
		}
		p := filepath.Join(outDir, j.file)
		if err := img.WriteArchiveFile(p); err != nil {
			return nil, fmt.Errorf("%s: %w", j.file, err)
		}
		out = append(out, Built{Name: s.Names[0], Path: p, Image: img})
	}
	return out, nil
}
