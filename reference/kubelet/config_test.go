package kubelet

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDNSConfig(t *testing.T) {
	host := &runtimeapi.DNSConfig{Servers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []string{"ndots:1"}}
	cluster := SandboxOptions{HostDNS: host, ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local"}
	clusterWant := &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"},
		Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}, Options: []string{"ndots:5"}}
	two := "2"
	tests := []struct {
		name   string
		policy corev1.DNSPolicy
		host   bool
		cfg    *corev1.PodDNSConfig
		opts   SandboxOptions
		want   *runtimeapi.DNSConfig
	}{
		{"ClusterFirst", corev1.DNSClusterFirst, false, nil, cluster, clusterWant},
		{"default policy is ClusterFirst", "", false, nil, cluster, clusterWant},
		{"ClusterFirst without cluster DNS falls back to the host", corev1.DNSClusterFirst, false, nil, SandboxOptions{HostDNS: host}, host},
		{"ClusterFirst on the host network is the host's", corev1.DNSClusterFirst, true, nil, cluster, host},
		{"ClusterFirstWithHostNet", corev1.DNSClusterFirstWithHostNet, true, nil, cluster, clusterWant},
		{"Default", corev1.DNSDefault, false, nil, cluster, host},
		{"None with dnsConfig", corev1.DNSNone, false,
			&corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}},
			cluster, &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []string{"ndots:2", "edns0"}}},
		{"dnsConfig merges into ClusterFirst", corev1.DNSClusterFirst, false,
			&corev1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "1.1.1.1"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}}},
			cluster, &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "1.1.1.1"}, Searches: clusterWant.Searches, Options: []string{"ndots:2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod("a")
			p.Spec.DNSPolicy, p.Spec.HostNetwork, p.Spec.DNSConfig = tc.policy, tc.host, tc.cfg
			got := DNSConfig(p, tc.opts)
			if !reflect.DeepEqual(got.Servers, tc.want.Servers) || !reflect.DeepEqual(got.Searches, tc.want.Searches) || !reflect.DeepEqual(got.Options, tc.want.Options) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if host.Options[0] != "ndots:1" || len(host.Servers) != 1 {
		t.Errorf("the host's config was modified: %v", host)
	}
}

func TestSandboxConfig(t *testing.T) {
	share := true
	p := testPod("a")
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP, HostPort: 5353}, {ContainerPort: 9000}}
	cfg := SandboxConfig(p, 2, SandboxOptions{LogRoot: "/logs", CgroupParent: "/kubelab"})
	if m := cfg.Metadata; m.Name != "p" || m.Namespace != "ns" || m.Uid != "uid-1" || m.Attempt != 2 {
		t.Errorf("metadata %v", m)
	}
	if cfg.Hostname != "p" || cfg.LogDirectory != "/logs/ns_p_uid-1" || cfg.Labels[LabelPodUID] != "uid-1" || cfg.Linux.CgroupParent != "/kubelab" {
		t.Errorf("config %v", cfg)
	}
	if len(cfg.PortMappings) != 2 || cfg.PortMappings[0].HostPort != 8080 || cfg.PortMappings[1].Protocol != runtimeapi.Protocol_UDP {
		t.Errorf("port mappings %v", cfg.PortMappings)
	}
	ns := cfg.Linux.SecurityContext.NamespaceOptions
	if ns.Network != runtimeapi.NamespaceMode_POD || ns.Pid != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("namespaces %v", ns)
	}
	p.Spec.ShareProcessNamespace, p.Spec.HostNetwork, p.Spec.Hostname = &share, true, "custom"
	cfg = SandboxConfig(p, 0, SandboxOptions{NodeHostname: "node1"})
	if ns := cfg.Linux.SecurityContext.NamespaceOptions; ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_POD {
		t.Errorf("shared/host namespaces %v", ns)
	}
	if cfg.Hostname != "node1" {
		t.Errorf("host-network hostname %q", cfg.Hostname)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)-$(B)": "x-y", "$$(A)": "$(A)", "$(C)": "$(C)", "a$": "a$", "$(A": "$(A", "$A": "$A", "": "",
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

type fakeObjects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

var errMissing = errors.New("missing")

func (f fakeObjects) ConfigMap(_, name string) (*corev1.ConfigMap, error) {
	if c, ok := f.cms[name]; ok {
		return c, nil
	}
	return nil, errMissing
}

func (f fakeObjects) Secret(_, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, errMissing
}

func TestResolveEnv(t *testing.T) {
	objs := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"cm": {Data: map[string]string{"K": "cv", "bad=key": "x", "OVER": "from-cm"}}},
		secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"pw": []byte("hunter2")}}},
	}
	ec := EnvContext{PodIPs: []string{"10.0.0.5"}, HostIPs: []string{"192.0.2.1"}, Objects: objs,
		IsNotFound: func(err error) bool { return errors.Is(err, errMissing) }}
	yes := true
	p := testPod("a")
	p.Labels = map[string]string{"app": "web"}
	c := &p.Spec.Containers[0]
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("250m")}
	c.EnvFrom = []corev1.EnvFromSource{
		{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: &yes}},
	}
	c.Env = []corev1.EnvVar{
		{Name: "PLAIN", Value: "v"},
		{Name: "REF", Value: "$(PLAIN)-$(CM_K)"},
		{Name: "NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		{Name: "CM_OVER", Value: "from-env"},
		{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}},
		{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "nope", Optional: &yes}}},
	}
	kvs, err := ResolveEnv(p, c, ec)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var order []string
	for _, kv := range kvs {
		got[kv.Key] = string(kv.Value)
		order = append(order, kv.Key)
	}
	want := map[string]string{
		"CM_K": "cv", "CM_OVER": "from-env", "PLAIN": "v", "REF": "v-cv", "NAME": "p", "NS": "ns", "UID": "uid-1", "NODE": "n1",
		"POD_IP": "10.0.0.5", "HOST_IP": "192.0.2.1", "APP": "web", "MEM": "64", "CPU": "1", "PW": "hunter2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env %v\nwant %v", got, want)
	}
	if order[0] != "CM_K" || order[1] != "CM_OVER" {
		t.Errorf("envFrom variables do not come first: %v", order)
	}

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "nope"}}}}
	if _, err := ResolveEnv(p, c, ec); !errors.Is(err, ErrConfig) {
		t.Errorf("missing required key: %v, want ErrConfig", err)
	}
	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}}}
	if _, err := ResolveEnv(p, c, ec); !errors.Is(err, ErrConfig) {
		t.Errorf("missing required secret: %v, want ErrConfig", err)
	}
}

func TestContainerConfig(t *testing.T) {
	p := testPod("a")
	c := &p.Spec.Containers[0]
	c.Command, c.Args, c.WorkingDir = []string{"/bin/$(X)"}, []string{"--v=$(X)"}, "/work"
	c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("128Mi")}
	cfg := ContainerConfig(p, c, false, 3, "img", []*runtimeapi.KeyValue{{Key: "X", Value: []byte("sh")}})
	if cfg.Command[0] != "/bin/sh" || cfg.Args[0] != "--v=sh" || cfg.WorkingDir != "/work" || cfg.Metadata.Attempt != 3 || cfg.LogPath != "a/3.log" {
		t.Errorf("config %v", cfg)
	}
	if cfg.Labels[LabelContainerName] != "a" || cfg.Labels[LabelPodUID] != "uid-1" {
		t.Errorf("labels %v", cfg.Labels)
	}
	r := cfg.Linux.Resources
	if r.CpuShares != 512 || r.CpuQuota != 100000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 128<<20 {
		t.Errorf("resources %v", r)
	}
}

func TestServiceEnv(t *testing.T) {
	svc := func(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	services := []*corev1.Service{
		svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443}),
		svc("ns", "redis-main", "10.96.0.7", corev1.ServicePort{Port: 6379}, corev1.ServicePort{Name: "metrics", Port: 9121, Protocol: corev1.ProtocolUDP}),
		svc("ns", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("other", "elsewhere", "10.96.0.9", corev1.ServicePort{Port: 80}),
	}
	got := map[string]string{}
	for _, e := range ServiceEnv(testPod("a"), services) {
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
		"REDIS_MAIN_SERVICE_HOST": "10.96.0.7", "REDIS_MAIN_SERVICE_PORT": "6379", "REDIS_MAIN_SERVICE_PORT_METRICS": "9121",
		"REDIS_MAIN_PORT": "tcp://10.96.0.7:6379", "REDIS_MAIN_PORT_6379_TCP": "tcp://10.96.0.7:6379", "REDIS_MAIN_PORT_6379_TCP_PROTO": "tcp",
		"REDIS_MAIN_PORT_6379_TCP_PORT": "6379", "REDIS_MAIN_PORT_6379_TCP_ADDR": "10.96.0.7",
		"REDIS_MAIN_PORT_9121_UDP": "udp://10.96.0.7:9121", "REDIS_MAIN_PORT_9121_UDP_PROTO": "udp",
		"REDIS_MAIN_PORT_9121_UDP_PORT": "9121", "REDIS_MAIN_PORT_9121_UDP_ADDR": "10.96.0.7",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	off := false
	p := testPod("a")
	p.Spec.EnableServiceLinks = &off
	got = map[string]string{}
	for _, e := range ServiceEnv(p, services) {
		got[e.Name] = e.Value
	}
	if got["KUBERNETES_SERVICE_HOST"] != "10.96.0.1" || got["REDIS_MAIN_SERVICE_HOST"] != "" {
		t.Errorf("enableServiceLinks false: %v", got)
	}
	// User variables win over service variables and can refer to them.
	p = testPod("a")
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "REDIS_MAIN_SERVICE_PORT", Value: "1"}, {Name: "URL", Value: "redis://$(REDIS_MAIN_SERVICE_HOST)"}}
	kvs, err := ResolveEnv(p, &p.Spec.Containers[0], EnvContext{Services: services})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range kvs {
		env[kv.Key] = string(kv.Value)
	}
	if env["REDIS_MAIN_SERVICE_PORT"] != "1" || env["URL"] != "redis://10.96.0.7" || env["KUBERNETES_SERVICE_HOST"] != "10.96.0.1" {
		t.Errorf("env %v", env)
	}
}
