package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// OpenAPI v3, the part kubectl relies on before writing: an index of
// group/version documents (/openapi/v3) and, per group/version
// (/openapi/v3/api/v1, /openapi/v3/apis/<group>/<version>), the paths of
// every resource with their operations, each PATCH tagged with
// x-kubernetes-group-version-kind and declaring the fieldValidation query
// parameter. That tells kubectl that the server validates fields itself, so
// `kubectl apply` works without --validate=false and sends
// fieldValidation=Strict. The documents carry no component schemas yet:
// `kubectl explain` does not work, and kubectl computes strategic merge
// patches from its compiled-in types (the PATCH operations do not list the
// strategic-merge-patch media type, which makes it do so).

// gvPath is the OpenAPI v3 document path of a group/version: "api/v1" or
// "apis/<group>/<version>".
func gvPath(group, version string) string {
	if group == "" {
		return "api/" + version
	}
	return "apis/" + group + "/" + version
}

func (s *Server) openAPIDoc(group, version string) map[string]any {
	paths := map[string]any{}
	queryParam := func(name, desc string) map[string]any {
		return map[string]any{"name": name, "in": "query", "description": desc, "schema": map[string]any{"type": "string"}, "uniqueItems": true}
	}
	params := []any{
		queryParam("dryRun", "When present, indicates that modifications should not be persisted."),
		queryParam("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
		queryParam("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn (default) or Strict."),
	}
	anyBody := map[string]any{"schema": map[string]any{"type": "object"}}
	for _, r := range s.table.GroupResources(group) {
		if r.Version != version {
			continue
		}
		base := "/" + gvPath(group, version)
		if r.Namespaced {
			base += "/namespaces/{namespace}"
		}
		gvk := map[string]any{"group": r.Group, "version": r.Version, "kind": r.Kind}
		op := func(action string, body bool) map[string]any {
			o := map[string]any{
				"operationId":                     action + strings.ToUpper(r.Kind[:1]) + r.Kind[1:],
				"parameters":                      params,
				"responses":                       map[string]any{"200": map[string]any{"description": "OK"}},
				"x-kubernetes-action":             action,
				"x-kubernetes-group-version-kind": gvk,
			}
			if body {
				o["requestBody"] = map[string]any{"content": map[string]any{
					"application/json-patch+json":  anyBody,
					"application/merge-patch+json": anyBody,
					"application/apply-patch+yaml": anyBody,
				}}
			}
			return o
		}
		paths[base+"/"+r.Name] = map[string]any{"post": op("post", false), "get": op("list", false)}
		paths[base+"/"+r.Name+"/{name}"] = map[string]any{"get": op("get", false), "put": op("put", false), "patch": op("patch", true), "delete": op("delete", false)}
		for _, sub := range r.Subresources {
			if sub == registry.SubStatus || sub == registry.SubScale {
				paths[base+"/"+r.Name+"/{name}/"+sub] = map[string]any{"get": op("get", false), "put": op("put", false)}
			}
		}
	}
	return map[string]any{
		"openapi": "3.0.0",
		"info":    map[string]any{"title": "Kubernetes (kubelab)", "version": s.cfg.Version.GitVersion},
		"paths":   paths,
	}
}

// serveOpenAPI serves /openapi/v3 and its group/version documents; it
// reports whether the path was one of them.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request, path string) bool {
	rest, ok := strings.CutPrefix(path, "/openapi/v3")
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		index := map[string]any{}
		for _, g := range s.table.Groups() {
			for _, v := range s.table.Versions(g) {
				p := gvPath(g, v)
				sum := sha512.Sum512(mustJSON(s.openAPIDoc(g, v)))
				index[p] = map[string]any{"serverRelativeURL": "/openapi/v3/" + p + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"paths": index})
		return true
	}
	for _, g := range s.table.Groups() {
		for _, v := range s.table.Versions(g) {
			if gvPath(g, v) == rest {
				writeJSON(w, http.StatusOK, s.openAPIDoc(g, v))
				return true
			}
		}
	}
	return false
}
