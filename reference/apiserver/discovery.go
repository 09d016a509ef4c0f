package apiserver

import (
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// subresourceVerbs are the verbs of each subresource, and the kind it
// takes and returns (empty: the parent's kind).
var subresourceVerbs = map[string]struct {
	verbs          []string
	group, version string
	kind           string
}{
	registry.SubStatus:      {[]string{"get", "patch", "update"}, "", "", ""},
	registry.SubScale:       {[]string{"get", "patch", "update"}, "autoscaling", "v1", "Scale"},
	registry.SubBinding:     {[]string{"create"}, "", "v1", "Binding"},
	registry.SubEviction:    {[]string{"create"}, "policy", "v1", "Eviction"},
	registry.SubToken:       {[]string{"create"}, "authentication.k8s.io", "v1", "TokenRequest"},
	registry.SubLog:         {[]string{"get"}, "", "", ""},
	registry.SubExec:        {[]string{"create", "get"}, "", "v1", "PodExecOptions"},
	registry.SubAttach:      {[]string{"create", "get"}, "", "v1", "PodAttachOptions"},
	registry.SubPortForward: {[]string{"create", "get"}, "", "v1", "PodPortForwardOptions"},
	registry.SubProxy:       {[]string{"create", "delete", "get", "patch", "update"}, "", "v1", "NodeProxyOptions"},
	registry.SubFinalize:    {[]string{"update"}, "", "", ""},
}

// resourceList is the legacy discovery document of one group/version.
func (s *Server) resourceList(group, version string) *metav1.APIResourceList {
	gv := metav1.GroupVersion{Group: group, Version: version}.String()
	if group == "" {
		gv = version
	}
	out := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: []metav1.APIResource{}}
	for _, r := range s.table.GroupResources(group) {
		if r.Version != version {
			continue
		}
		out.APIResources = append(out.APIResources, metav1.APIResource{
			Name: r.Name, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind,
			Verbs: r.Verbs(), ShortNames: r.ShortNames, Categories: r.Categories,
		})
		for _, sub := range r.Subresources {
			sv := subresourceVerbs[sub]
			kind := sv.kind
			if kind == "" {
				kind = r.Kind
			}
			out.APIResources = append(out.APIResources, metav1.APIResource{
				Name: r.Name + "/" + sub, Namespaced: r.Namespaced, Kind: kind, Group: sv.group, Version: sv.version, Verbs: sv.verbs,
			})
		}
	}
	out.APIResources = append(out.APIResources, reviewAPIResources(group, version)...)
	return out
}

func (s *Server) apiGroup(group string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: group}
	for _, v := range s.discoveryVersions(group) {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
	}
	if len(g.Versions) > 0 {
		g.PreferredVersion = g.Versions[0]
	}
	return g
}

// aggregated returns the aggregated discovery document (apidiscovery/v2)
// of the core group (core=true) or of every other group.
func (s *Server) aggregated(core bool) *apidiscoveryv2.APIGroupDiscoveryList {
	out := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, group := range s.discoveryGroups() {
		if (group == "") != core {
			continue
		}
		g := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: group}}
		for _, v := range s.discoveryVersions(group) {
			vd := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			for _, r := range s.table.GroupResources(group) {
				if r.Version != v {
					continue
				}
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				rd := apidiscoveryv2.APIResourceDiscovery{
					Resource: r.Name, SingularResource: r.Singular, Scope: scope, Verbs: r.Verbs(),
					ShortNames: r.ShortNames, Categories: r.Categories,
					ResponseKind: &metav1.GroupVersionKind{Group: group, Version: v, Kind: r.Kind},
				}
				for _, sub := range r.Subresources {
					sv := subresourceVerbs[sub]
					rk := &metav1.GroupVersionKind{Group: sv.group, Version: sv.version, Kind: sv.kind}
					if sv.kind == "" {
						rk = &metav1.GroupVersionKind{Group: group, Version: v, Kind: r.Kind}
					}
					rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{Subresource: sub, ResponseKind: rk, Verbs: sv.verbs})
				}
				vd.Resources = append(vd.Resources, rd)
			}
			for _, r := range reviewAPIResources(group, v) {
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{
					Resource: r.Name, SingularResource: r.SingularName, Scope: scope, Verbs: r.Verbs,
					ResponseKind: &metav1.GroupVersionKind{Group: group, Version: v, Kind: r.Kind},
				})
			}
			g.Versions = append(g.Versions, vd)
		}
		out.Items = append(out.Items, g)
	}
	return out
}

// wantsAggregated reports whether the client accepts aggregated discovery
// v2 (what kubectl and client-go ask for first).
func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(part, "as=APIGroupDiscoveryList") && strings.Contains(part, "g=apidiscovery.k8s.io") && strings.Contains(part, "v=v2") && !strings.Contains(part, "v=v2beta1") {
			return true
		}
	}
	return false
}

const aggregatedContentType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

func writeAggregated(w http.ResponseWriter, v any) {
	data := mustJSON(v)
	w.Header().Set("Content-Type", aggregatedContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// serveNonResource serves discovery, /version, the probes and "/".
func (s *Server) serveNonResource(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, notFound())
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if s.serveOpenAPI(w, r, path) {
		return
	}
	switch {
	case path == "":
		paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"}
		for _, g := range s.discoveryGroups() {
			if g != "" {
				paths = append(paths, "/apis/"+g)
				for _, v := range s.discoveryVersions(g) {
					paths = append(paths, "/apis/"+g+"/"+v)
				}
			}
		}
		writeJSON(w, http.StatusOK, map[string][]string{"paths": paths})
	case path == "/version":
		writeJSON(w, http.StatusOK, s.cfg.Version)
	case path == "/healthz" || path == "/livez" || path == "/readyz" || strings.HasPrefix(path, "/healthz/") || strings.HasPrefix(path, "/livez/") || strings.HasPrefix(path, "/readyz/"):
		if strings.HasPrefix(path, "/readyz") && !s.cache.Ready() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("[-]watch-cache failed: not ready\nreadyz check failed\n"))
			return
		}
		if _, ok := r.URL.Query()["verbose"]; ok {
			_, _ = w.Write([]byte("[+]ping ok\n[+]watch-cache ok\n" + parts[0] + " check passed\n"))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	case path == "/api":
		if wantsAggregated(r) {
			writeAggregated(w, s.aggregated(true))
			return
		}
		writeJSON(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case path == "/api/v1":
		writeJSON(w, http.StatusOK, s.resourceList("", "v1"))
	case path == "/apis":
		if wantsAggregated(r) {
			writeAggregated(w, s.aggregated(false))
			return
		}
		list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
		for _, g := range s.discoveryGroups() {
			if g != "" {
				list.Groups = append(list.Groups, s.apiGroup(g))
			}
		}
		writeJSON(w, http.StatusOK, list)
	case len(parts) == 2 && parts[0] == "apis" && len(s.discoveryVersions(parts[1])) > 0:
		writeJSON(w, http.StatusOK, s.apiGroup(parts[1]))
	case len(parts) == 3 && parts[0] == "apis" && contains(s.discoveryVersions(parts[1]), parts[2]):
		writeJSON(w, http.StatusOK, s.resourceList(parts[1], parts[2]))
	default:
		writeError(w, notFound())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
