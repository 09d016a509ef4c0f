package kubelet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SandboxOptions are the node-wide settings a sandbox config is built with.
type SandboxOptions struct {
	// LogRoot is the directory under which each pod gets its log
	// directory (namespace_name_uid), like upstream's /var/log/pods.
	LogRoot string
	// NodeHostname is the hostname of host-network pods.
	NodeHostname string
	// ClusterDNS are the cluster DNS servers for dnsPolicy ClusterFirst;
	// with none, ClusterFirst falls back to the host's resolver, as
	// upstream does.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain ("cluster.local").
	ClusterDomain string
	// HostDNS is the host's resolver configuration (dnsPolicy Default).
	HostDNS *runtimeapi.DNSConfig
	// CgroupParent is the parent cgroup of the pod's cgroup.
	CgroupParent string
}

// PodLogDir is a pod's log directory under logRoot.
func PodLogDir(logRoot string, pod *corev1.Pod) string {
	return filepath.Join(logRoot, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// SandboxConfig builds the CRI sandbox config of a pod: metadata, hostname,
// log directory, DNS from dnsPolicy and dnsConfig, host port mappings,
// labels and annotations, cgroup parent and namespaces (network NODE for
// hostNetwork, PID POD with shareProcessNamespace, NODE with hostPID,
// CONTAINER otherwise).
func SandboxConfig(pod *corev1.Pod, attempt uint32, o SandboxOptions) *runtimeapi.PodSandboxConfig {
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if pod.Spec.HostNetwork {
		hostname = o.NodeHostname
	}
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[LabelPodName], labels[LabelPodNamespace], labels[LabelPodUID] = pod.Name, pod.Namespace, string(pod.UID)
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: PodLogDir(o.LogRoot, pod),
		DnsConfig:    DNSConfig(pod, o),
		PortMappings: portMappings(pod),
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    o.CgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaceOptions(pod)},
		},
	}
	return cfg
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		ns.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

func portMappings(pod *corev1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			out = append(out, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return out
}

// DNSConfig is a pod's resolver configuration, as upstream's DNS
// configurer builds it: ClusterFirst (the default) uses the cluster DNS
// servers with the namespace's search path and ndots:5 — or, with no
// cluster DNS, or for a host-network pod under ClusterFirst, the host's
// configuration; ClusterFirstWithHostNet always the cluster's; Default the
// host's; None only the pod's dnsConfig. The pod's dnsConfig is then
// merged in: servers and searches appended without duplicates, options
// replacing those of the same name.
func DNSConfig(pod *corev1.Pod, o SandboxOptions) *runtimeapi.DNSConfig {
	host := &runtimeapi.DNSConfig{}
	if o.HostDNS != nil {
		host = &runtimeapi.DNSConfig{
			Servers:  slices.Clone(o.HostDNS.Servers),
			Searches: slices.Clone(o.HostDNS.Searches),
			Options:  slices.Clone(o.HostDNS.Options),
		}
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	cluster := func() *runtimeapi.DNSConfig {
		if len(o.ClusterDNS) == 0 {
			return host
		}
		return &runtimeapi.DNSConfig{
			Servers:  slices.Clone(o.ClusterDNS),
			Searches: append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, host.Searches...),
			Options:  []string{"ndots:5"},
		}
	}
	var cfg *runtimeapi.DNSConfig
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case corev1.DNSDefault:
		cfg = host
	case corev1.DNSClusterFirstWithHostNet:
		cfg = cluster()
	default: // ClusterFirst
		if pod.Spec.HostNetwork {
			cfg = host
		} else {
			cfg = cluster()
		}
	}
	if d := pod.Spec.DNSConfig; d != nil {
		for _, s := range d.Nameservers {
			if !slices.Contains(cfg.Servers, s) {
				cfg.Servers = append(cfg.Servers, s)
			}
		}
		for _, s := range d.Searches {
			if !slices.Contains(cfg.Searches, s) {
				cfg.Searches = append(cfg.Searches, s)
			}
		}
		for _, opt := range d.Options {
			v := opt.Name
			if opt.Value != nil {
				v += ":" + *opt.Value
			}
			cfg.Options = slices.DeleteFunc(cfg.Options, func(s string) bool {
				name, _, _ := strings.Cut(s, ":")
				return name == opt.Name
			})
			cfg.Options = append(cfg.Options, v)
		}
	}
	return cfg
}

// HostDNS reads a resolv.conf (the host's, for dnsPolicy Default).
func HostDNS(path string) (*runtimeapi.DNSConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := &runtimeapi.DNSConfig{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, f[1])
		case "search", "domain":
			cfg.Searches = append(cfg.Searches, f[1:]...)
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg, nil
}

// ContainerConfig builds the CRI config of container c of pod: metadata
// with the attempt, the pod's annotations, image, command and args with $(VAR) expanded from env,
// working directory, env, labels that tie it to the pod, log path
// (NAME/ATTEMPT.log in the pod's log directory), resources from its
// requests and limits, and the pod's namespaces.
func ContainerConfig(pod *corev1.Pod, c *corev1.Container, init bool, attempt uint32, image string, env []*runtimeapi.KeyValue) *runtimeapi.ContainerConfig {
	vars := map[string]string{}
	for _, kv := range env {
		vars[kv.Key] = string(kv.Value)
	}
	expandAll := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, Expand(s, vars))
		}
		return out
	}
	kind := "app"
	if init {
		kind = "init"
	}
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command),
		Args:       expandAll(c.Args),
		WorkingDir: c.WorkingDir,
		Envs:       env,
		Labels: map[string]string{
			LabelContainerName: c.Name, LabelContainerType: kind,
			LabelPodName: pod.Name, LabelPodNamespace: pod.Namespace, LabelPodUID: string(pod.UID),
		},
		Annotations: containerAnnotations(pod, attempt),
		LogPath:     filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c),
			SecurityContext: containerSecurity(pod, c),
		},
	}
}

// containerAnnotations are the pod's annotations (opaque to the kubelet;
// a runtime may read its own, as the hollow runtime does) plus the
// container's restart count.
func containerAnnotations(pod *corev1.Pod, attempt uint32) map[string]string {
	a := map[string]string{}
	for k, v := range pod.Annotations {
		a[k] = v
	}
	a["io.kubernetes.container.restartCount"] = strconv.Itoa(int(attempt))
	return a
}

func containerSecurity(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	uid := pod.Spec.SecurityContext
	if uid != nil && uid.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *uid.RunAsUser}
	}
	if uid != nil && uid.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *uid.RunAsGroup}
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *s.RunAsUser}
		}
		if s.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *s.RunAsGroup}
		}
		if s.Privileged != nil {
			sc.Privileged = *s.Privileged
		}
		if s.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *s.ReadOnlyRootFilesystem
		}
	}
	return sc
}

// linuxResources maps requests and limits as upstream does: CPU shares
// from the request (min 2), a CFS quota over a 100 ms period from the
// limit, the memory limit in bytes.
func linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuShares: 2}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		r.CpuShares = max(q.MilliValue()*1024/1000, 2)
	} else if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CpuShares = max(q.MilliValue()*1024/1000, 2)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CpuPeriod = 100000
		r.CpuQuota = max(q.MilliValue()*100, 1000)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = q.Value()
	}
	return r
}

// Expand replaces $(VAR) in s with vars' values, as Kubernetes does in
// command, args and env values: $$ is a literal $, and a reference to an
// unknown variable is left as written.
func Expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ErrConfig marks a container config that cannot be built (a missing
// ConfigMap, Secret or key that is not optional, an unsupported field
// path): the container waits with CreateContainerConfigError.
var ErrConfig = errors.New("container config")

// Objects fetches the ConfigMaps and Secrets that env refers to. A missing
// object is an error for which apierrors.IsNotFound holds.
type Objects interface {
	// ConfigMap returns the ConfigMap namespace/name.
	ConfigMap(namespace, name string) (*corev1.ConfigMap, error)
	// Secret returns the Secret namespace/name.
	Secret(namespace, name string) (*corev1.Secret, error)
}

// EnvContext is what env values may refer to beyond the pod spec.
type EnvContext struct {
	// PodIPs and HostIPs are the pod's and node's addresses.
	PodIPs, HostIPs []string
	// Objects fetches ConfigMaps and Secrets.
	Objects Objects
	// IsNotFound tells a missing object's error (apierrors.IsNotFound).
	IsNotFound func(error) bool
	// Services are the cluster's services, for ServiceEnv.
	Services []*corev1.Service
	// Token returns a token of the pod's service account for audience
	// (empty: the API server's), valid for about expirationSeconds, for
	// projected serviceAccountToken sources; nil: none can be had.
	Token func(pod *corev1.Pod, audience string, expirationSeconds int64) (string, error)
}

// ResolveEnv computes container c's environment, as upstream's
// makeEnvironmentVariables: the services' variables (ServiceEnv) first,
// then envFrom sources, in order (with their
// prefix; keys that are not valid names are skipped), then env entries,
// which win; values expand $(VAR) of variables defined before them;
// valueFrom reads fieldRef (metadata.name, metadata.namespace,
// metadata.uid, metadata.labels['K'], metadata.annotations['K'],
// spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs,
// status.hostIP, status.hostIPs), resourceFieldRef (limits and requests of
// cpu and memory), configMapKeyRef and secretKeyRef. A missing object or
// key that is not optional is an error wrapping ErrConfig.
func ResolveEnv(pod *corev1.Pod, c *corev1.Container, ec EnvContext) ([]*runtimeapi.KeyValue, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	notFound := func(err error) bool { return ec.IsNotFound != nil && ec.IsNotFound(err) }
	for _, e := range ServiceEnv(pod, ec.Services) {
		set(e.Name, e.Value)
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := ec.Objects.ConfigMap(pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if notFound(err) && optional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w: %w", from.ConfigMapRef.Name, ErrConfig, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := ec.Objects.Secret(pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if notFound(err) && optional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w: %w", from.SecretRef.Name, ErrConfig, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			name := from.Prefix + k
			if !validEnvName(name) {
				continue
			}
			set(name, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, vars))
			continue
		}
		v, ok, err := envValueFrom(pod, c, e.ValueFrom, ec, notFound)
		if err != nil {
			return nil, fmt.Errorf("env %q: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, 0, len(order))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vars[k])})
	}
	return out, nil
}

func optional(b *bool) bool { return b != nil && *b }

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '=' || r < 0x20 || r > 0x7e || (i == 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func envValueFrom(pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource, ec EnvContext, notFound func(error) bool) (string, bool, error) {
	switch {
	case src.FieldRef != nil:
		v, err := fieldValue(pod, src.FieldRef.FieldPath, ec)
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		v, err := resourceValue(c, src.ResourceFieldRef)
		return v, err == nil, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := ec.Objects.ConfigMap(pod.Namespace, ref.Name)
		if err != nil {
			if notFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q: %w: %w", ref.Name, ErrConfig, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("key %q not in configmap %q: %w", ref.Key, ref.Name, ErrConfig)
		}
		return v, true, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := ec.Objects.Secret(pod.Namespace, ref.Name)
		if err != nil {
			if notFound(err) && optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q: %w: %w", ref.Name, ErrConfig, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("key %q not in secret %q: %w", ref.Key, ref.Name, ErrConfig)
		}
		return string(v), true, nil
	}
	return "", false, fmt.Errorf("empty valueFrom: %w", ErrConfig)
}

func fieldValue(pod *corev1.Pod, path string, ec EnvContext) (string, error) {
	first := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return s[0]
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return first(ec.PodIPs), nil
	case "status.podIPs":
		return strings.Join(ec.PodIPs, ","), nil
	case "status.hostIP":
		return first(ec.HostIPs), nil
	case "status.hostIPs":
		return strings.Join(ec.HostIPs, ","), nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return m[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q: %w", path, ErrConfig)
}

func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q: %w", ref.Resource, ErrConfig)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "0", nil // upstream falls back to node allocatable for limits; kubelab reports 0
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		// Round up to whole divisors, as upstream.
		m := q.MilliValue()
		d := divisor.MilliValue()
		return strconv.FormatInt((m+d-1)/d, 10), nil
	}
	v, d := q.Value(), divisor.Value()
	return strconv.FormatInt((v+d-1)/d, 10), nil
}
