package registry

import (
	"fmt"
	"math/big"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Default NodePort range, as upstream's --service-node-port-range.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// ServiceAllocator hands out Service ClusterIPs from a prefix and NodePorts
// from [NodePortMin, NodePortMax]. Its state lives in memory and is rebuilt
// from the stored Services at start (Rebuild), so one API server per store
// may allocate. It is safe for concurrent use.
type ServiceAllocator struct {
	prefix netip.Prefix

	mu               sync.Mutex            // guards the fields below
	ips              map[netip.Addr]string // allocated IP -> owner ns/name
	ports            map[int32]string      // allocated node port -> owner
	nextIP, nextPort int64                 // where the next search starts
}

// NewServiceAllocator returns an allocator for the IPv4 or IPv6 prefix
// cidr. The network address and (for IPv4) the broadcast address are never
// handed out; the first usable address is reserved for the "kubernetes"
// service, as upstream.
func NewServiceAllocator(cidr string) (*ServiceAllocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("service cluster IP range %q: %w", cidr, err)
	}
	p = p.Masked()
	if p.Addr().BitLen()-p.Bits() < 2 {
		return nil, fmt.Errorf("service cluster IP range %q is too small", cidr)
	}
	return &ServiceAllocator{prefix: p, ips: map[netip.Addr]string{}, ports: map[int32]string{}}, nil
}

// size returns how many addresses the prefix offers (capped at 2^20).
func (a *ServiceAllocator) size() int64 {
	host := a.prefix.Addr().BitLen() - a.prefix.Bits()
	if host > 20 {
		host = 20
	}
	return int64(1)<<host - 2
}

func (a *ServiceAllocator) addr(i int64) netip.Addr {
	base := new(big.Int).SetBytes(a.prefix.Addr().AsSlice())
	base.Add(base, big.NewInt(i+1))
	b := base.Bytes()
	out := make([]byte, a.prefix.Addr().BitLen()/8)
	copy(out[len(out)-len(b):], b)
	addr, _ := netip.AddrFromSlice(out)
	return addr
}

// KubernetesServiceIP is the first usable address of the range.
func (a *ServiceAllocator) KubernetesServiceIP() netip.Addr { return a.addr(0) }

func owner(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// allocate assigns IPs and node ports to svc (modifying it), or returns a
// 422 Invalid naming the field. old, when non-nil, is the current version
// whose allocations svc may keep. It returns the allocations made, to be
// released on failure.
func (a *ServiceAllocator) allocate(svc, old *corev1.Service) (ips []netip.Addr, ports []int32, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fail := func(e *field.Error) error {
		for _, ip := range ips {
			delete(a.ips, ip)
		}
		for _, p := range ports {
			delete(a.ports, p)
		}
		ips, ports = nil, nil
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{e})
	}
	me := owner(svc)
	if svc.Spec.Type != corev1.ServiceTypeExternalName {
		switch ip := svc.Spec.ClusterIP; {
		case ip == corev1.ClusterIPNone:
		case ip == "":
			n := a.size()
			for i := int64(0); i < n; i++ {
				cand := a.addr((a.nextIP + i) % n)
				if cand == a.KubernetesServiceIP() && !(svc.Namespace == "default" && svc.Name == "kubernetes") {
					continue
				}
				if _, used := a.ips[cand]; !used {
					a.ips[cand] = me
					ips = append(ips, cand)
					a.nextIP = (a.nextIP + i + 1) % n
					svc.Spec.ClusterIP = cand.String()
					break
				}
			}
			if svc.Spec.ClusterIP == "" {
				return nil, nil, fail(field.Invalid(field.NewPath("spec", "clusterIPs"), "", "failed to allocate IP: range is full"))
			}
		default:
			addr, perr := netip.ParseAddr(ip)
			path := field.NewPath("spec", "clusterIPs").Index(0)
			switch {
			case perr != nil:
				return nil, nil, fail(field.Invalid(path, ip, "must be a valid IP address"))
			case !a.prefix.Contains(addr):
				return nil, nil, fail(field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, ip, a.prefix)))
			}
			if o, used := a.ips[addr]; used && o != me {
				return nil, nil, fail(field.Invalid(path, ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)))
			} else if !used {
				a.ips[addr] = me
				ips = append(ips, addr)
			}
		}
		if svc.Spec.ClusterIP != "" && len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone && len(svc.Spec.IPFamilies) == 0 {
			fam := corev1.IPv4Protocol
			if a.prefix.Addr().Is6() {
				fam = corev1.IPv6Protocol
			}
			svc.Spec.IPFamilies = []corev1.IPFamily{fam}
		}
		if svc.Spec.IPFamilyPolicy == nil && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			single := corev1.IPFamilyPolicySingleStack
			svc.Spec.IPFamilyPolicy = &single
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			if p.NodePort == 0 {
				n := int64(NodePortMax - NodePortMin + 1)
				for j := int64(0); j < n; j++ {
					cand := int32(NodePortMin + (a.nextPort+j)%n)
					if _, used := a.ports[cand]; !used {
						a.ports[cand] = me
						ports = append(ports, cand)
						a.nextPort = (a.nextPort + j + 1) % n
						p.NodePort = cand
						break
					}
				}
				if p.NodePort == 0 {
					return nil, nil, fail(field.Invalid(path, 0, "failed to allocate a nodePort: range is full"))
				}
				continue
			}
			if p.NodePort < NodePortMin || p.NodePort > NodePortMax {
				return nil, nil, fail(field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", NodePortMin, NodePortMax)))
			}
			if o, used := a.ports[p.NodePort]; used && o != me {
				return nil, nil, fail(field.Invalid(path, p.NodePort, "provided port is already allocated"))
			} else if !used {
				a.ports[p.NodePort] = me
				ports = append(ports, p.NodePort)
			}
		}
	}
	return ips, ports, nil
}

func (a *ServiceAllocator) release(ips []netip.Addr, ports []int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ip := range ips {
		delete(a.ips, ip)
	}
	for _, p := range ports {
		delete(a.ports, p)
	}
}

// held returns the allocations svc holds.
func held(svc *corev1.Service) (ips []netip.Addr, ports []int32) {
	for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if addr, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, addr)
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			ports = append(ports, p.NodePort)
		}
	}
	return ips, ports
}

// Rebuild marks the allocations of existing services as used.
func (a *ServiceAllocator) Rebuild(services []runtime.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range services {
		svc := o.(*corev1.Service)
		ips, ports := held(svc)
		for _, ip := range ips {
			a.ips[ip] = owner(svc)
		}
		for _, p := range ports {
			a.ports[p] = owner(svc)
		}
	}
}

// Allocated reports whether ip is allocated (for tests and diagnostics).
func (a *ServiceAllocator) Allocated(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.ips[addr]
	return ok
}

// Hooks returns the storage hooks that allocate on create and update and
// release on delete, for core/v1 services.
func (a *ServiceAllocator) Hooks() Hooks {
	isSvc := func(r *Resource) bool { return r.Group == "" && r.Name == "services" }
	return Hooks{
		BeforeCreate: func(r *Resource, obj runtime.Object) (func(), error) {
			if !isSvc(r) {
				return nil, nil
			}
			ips, ports, err := a.allocate(obj.(*corev1.Service), nil)
			if err != nil {
				return nil, err
			}
			return func() { a.release(ips, ports) }, nil
		},
		BeforeUpdate: func(r *Resource, obj, old runtime.Object) (func(), func(), error) {
			if !isSvc(r) {
				return nil, nil, nil
			}
			svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
			ips, ports, err := a.allocate(svc, oldSvc)
			if err != nil {
				return nil, nil, err
			}
			undo := func() { a.release(ips, ports) }
			commit := func() {
				// Release what the old version held and the new one does not.
				newIPs, newPorts := held(svc)
				oldIPs, oldPorts := held(oldSvc)
				var relIPs []netip.Addr
				var relPorts []int32
				for _, ip := range oldIPs {
					if !containsAddr(newIPs, ip) {
						relIPs = append(relIPs, ip)
					}
				}
				for _, p := range oldPorts {
					if !containsPort(newPorts, p) {
						relPorts = append(relPorts, p)
					}
				}
				a.release(relIPs, relPorts)
			}
			return undo, commit, nil
		},
		AfterDelete: func(r *Resource, obj runtime.Object) {
			if isSvc(r) {
				a.release(held(obj.(*corev1.Service)))
			}
		},
	}
}

func containsAddr(list []netip.Addr, x netip.Addr) bool {
	for _, y := range list {
		if x == y {
			return true
		}
	}
	return false
}

func containsPort(list []int32, x int32) bool {
	for _, y := range list {
		if x == y {
			return true
		}
	}
	return false
}
