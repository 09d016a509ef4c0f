package process

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// processUser is who a container's processes run as.
type processUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// lookupID finds name (or a number) in an /etc/passwd- or /etc/group-style
// file of the root filesystem; it returns the id and, for passwd, the
// primary group.
func lookupID(rootfs, file, name string) (id, gid uint32, found bool) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		id, found = uint32(n), true
	}
	f, err := os.Open(filepath.Join(rootfs, "etc", file))
	if err != nil {
		return id, 0, found
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 4 || (fs[0] != name && fs[2] != name) {
			continue
		}
		u, err1 := strconv.ParseUint(fs[2], 10, 32)
		g, err2 := strconv.ParseUint(fs[3], 10, 32)
		if err1 == nil {
			if err2 != nil {
				g = 0
			}
			return uint32(u), uint32(g), true
		}
	}
	return id, 0, found
}

// resolveUser applies CRI's security context over the image's User
// ("user", "uid", "user:group" or "uid:gid"): RunAsUser / RunAsUsername
// replace the image's user, RunAsGroup its group; supplemental groups are
// added.
func resolveUser(rootfs, imageUser string, sc *runtimeapi.LinuxContainerSecurityContext) (processUser, error) {
	var u processUser
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return u, fmt.Errorf("RunAsGroup is set without RunAsUser or RunAsUsername")
	}
	userPart, groupPart, _ := strings.Cut(imageUser, ":")
	if sc.GetRunAsUser() != nil {
		userPart = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	} else if sc.GetRunAsUsername() != "" {
		userPart = sc.GetRunAsUsername()
	}
	if userPart != "" {
		uid, gid, ok := lookupID(rootfs, "passwd", userPart)
		if !ok {
			return u, fmt.Errorf("user %q: not a number and not in the image's /etc/passwd", userPart)
		}
		u.UID, u.GID = uid, gid
	}
	if sc.GetRunAsGroup() != nil {
		groupPart = strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	if groupPart != "" {
		gid, _, ok := lookupID(rootfs, "group", groupPart)
		if !ok {
			return u, fmt.Errorf("group %q: not a number and not in the image's /etc/group", groupPart)
		}
		u.GID = gid
	}
	for _, g := range sc.GetSupplementalGroups() {
		u.Groups = append(u.Groups, uint32(g))
	}
	return u, nil
}

// sandboxHostname is the sandbox's hostname, or — like containerd — the
// node's when the config has none; cut to the kernel's 64-byte limit.
func sandboxHostname(cfg *runtimeapi.PodSandboxConfig) string {
	h := cfg.GetHostname()
	if h == "" {
		h, _ = os.Hostname()
	}
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

// sandboxFiles writes the files every container of a sandbox gets: hosts,
// hostname and (when the config has DNS settings) resolv.conf. It returns
// them as mounts.
func sandboxFiles(dir, ip string, cfg *runtimeapi.PodSandboxConfig) ([]mountSpec, error) {
	hostname := sandboxHostname(cfg)
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if ip != "" {
		hosts += ip + "\t" + hostname + "\n"
	}
	files := map[string]string{"hosts": hosts, "hostname": hostname + "\n"}
	if dns := cfg.GetDnsConfig(); dns != nil {
		var b strings.Builder
		for _, s := range dns.Servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(dns.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
		}
		if len(dns.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
		}
		files["resolv.conf"] = b.String()
	}
	var mounts []mountSpec
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		content, ok := files[name]
		if !ok {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
		mounts = append(mounts, mountSpec{HostPath: p, ContainerPath: "/etc/" + name})
	}
	return mounts, nil
}
