package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/kubelab/kubelab/reference/apiserver/openapi"
	"github.com/kubelab/kubelab/reference/apiserver/registry"
)

// OpenAPI, as upstream serves it:
//
//   - /openapi/v3: the index of group/version documents, each with a
//     serverRelativeURL carrying the hash of the document
//     (/openapi/v3/api/v1?hash=…), which clients cache by;
//   - /openapi/v3/api/v1, /openapi/v3/apis/<group>/<version>: the paths and
//     operations of the group/version's resources (each tagged with
//     x-kubernetes-group-version-kind and declaring the fieldValidation
//     parameter, so kubectl leaves field validation to the server) and
//     components.schemas: the definitions of its kinds and everything they
//     reach, generated from the k8s.io/api types by package openapi;
//   - /openapi/v2: the same for every group in one swagger document, as JSON
//     or, when asked (client-go's discovery asks), as the gnostic protobuf.
//
// kubectl explain reads the v3 schemas; kubectl apply computes strategic
// merge patches from their x-kubernetes-patch-* extensions; server-side
// apply builds its type converter from them. Each part is built on first
// use and kept, once per resource table: servers over the same table share it.

// serverOpenAPI is what a Server keeps of OpenAPI: the (shared) documents
// and its field managers.
type serverOpenAPI struct {
	once     sync.Once
	shared   *openAPIState
	managers sync.Map // "<gvk>/<subresource>" → *managedfields.FieldManager
	convOnce sync.Once
	conv     *structuredConverter // the managers' type converter
}

// openAPIState holds the schemas and documents of one resource table,
// each part built on first use. Servers with the same table (every server
// over the built-in table, e.g. in tests) share one.
type openAPIState struct {
	defsOnce sync.Once
	v3       openapi.Definitions
	tc       managedfields.TypeConverter
	tcErr    error

	docsOnce sync.Once
	docs     map[string][]byte // group/version path → JSON of its v3 document
	hashes   map[string]string // group/version path → hash of the document

	v2Once sync.Once
	v2     []byte // the v2 document as JSON

	protoOnce sync.Once
	v2Proto   []byte
	protoErr  error
}

// openAPIStates are the openAPIState of each table, by openAPIKey.
var openAPIStates sync.Map

// openAPIKey identifies what the documents are made of: the version and,
// per resource, its group, version, kind, Go types, scope and subresources.
func (s *Server) openAPIKey() string {
	var b strings.Builder
	b.WriteString(s.cfg.Version.GitVersion)
	for _, r := range s.table.All() {
		fmt.Fprintf(&b, "|%s/%s/%s/%s/%T/%T/%v/%v", r.Group, r.Version, r.Name, r.Kind, r.New(), r.NewList(), r.Namespaced, r.Subresources)
	}
	return b.String()
}

// gvPath is the OpenAPI v3 document path of a group/version: "api/v1" or
// "apis/<group>/<version>".
func gvPath(group, version string) string {
	if group == "" {
		return "api/" + version
	}
	return "apis/" + group + "/" + version
}

// openAPIKinds are the Go types the documents define: every resource's kind
// and list kind, the review resources' kinds, the kinds the subresources
// take, and the meta types the operations refer to.
func (s *Server) openAPIKinds() []openapi.Kind {
	var kinds []openapi.Kind
	for _, r := range s.table.All() {
		kinds = append(kinds,
			openapi.KindOf(r.GroupVersionKind(), r.New()),
			openapi.KindOf(r.GroupVersion().WithKind(r.Kind+"List"), r.NewList()))
	}
	for _, g := range s.table.Groups() {
		for _, v := range s.table.Versions(g) {
			gv := schema.GroupVersion{Group: g, Version: v}
			kinds = append(kinds,
				openapi.KindOf(gv.WithKind("DeleteOptions"), &metav1.DeleteOptions{}),
				openapi.KindOf(gv.WithKind("WatchEvent"), &metav1.WatchEvent{}))
		}
	}
	// The review resources and the kinds of the POST-only subresources.
	for _, gv := range s.openAPIGroupVersions() {
		for _, ar := range reviewAPIResources(gv.Group, gv.Version) {
			gvk := gv.WithKind(ar.Kind)
			obj, _ := scheme.Scheme.New(gvk)
			kinds = append(kinds, openapi.KindOf(gvk, obj))
		}
	}
	for _, gvk := range createSubresources {
		obj, _ := scheme.Scheme.New(gvk)
		kinds = append(kinds, openapi.KindOf(gvk, obj))
	}
	kinds = append(kinds,
		openapi.KindOf(autoscalingv1.SchemeGroupVersion.WithKind("Scale"), &autoscalingv1.Scale{}),
		openapi.KindOf(schema.GroupVersionKind{Version: "v1", Kind: "Status"}, &metav1.Status{}),
		openapi.Kind{Type: reflect.TypeOf(metav1.Patch{})})
	return kinds
}

// openAPI returns the OpenAPI state of the server's table.
func (s *Server) openAPI() *openAPIState {
	s.oapi.once.Do(func() {
		st, _ := openAPIStates.LoadOrStore(s.openAPIKey(), &openAPIState{})
		s.oapi.shared = st.(*openAPIState)
	})
	return s.oapi.shared
}

// openAPIDefinitions returns the state with the v3 definitions and the
// type converter built from them.
func (s *Server) openAPIDefinitions() *openAPIState {
	o := s.openAPI()
	o.defsOnce.Do(func() {
		o.v3 = openapi.Generate(s.openAPIKinds(), openapi.V3)
		o.tc, o.tcErr = managedfields.NewTypeConverter(o.v3, false)
	})
	return o
}

// openAPIV3Docs returns the state with the v3 documents built.
func (s *Server) openAPIV3Docs() *openAPIState {
	o := s.openAPIDefinitions()
	o.docsOnce.Do(func() {
		docs, hashes := map[string][]byte{}, map[string]string{}
		for _, gv := range s.openAPIGroupVersions() {
			p := gvPath(gv.Group, gv.Version)
			docs[p] = mustJSON(s.openAPIV3Doc(o.v3, gv.Group, gv.Version))
			sum := sha512.Sum512(docs[p])
			hashes[p] = strings.ToUpper(hex.EncodeToString(sum[:]))
		}
		o.docs, o.hashes = docs, hashes
	})
	return o
}

// openAPIV2JSON returns the v2 document as JSON.
func (s *Server) openAPIV2JSON() []byte {
	o := s.openAPI()
	o.v2Once.Do(func() {
		o.v2 = mustJSON(s.openAPIV2Doc(openapi.Generate(s.openAPIKinds(), openapi.V2)))
	})
	return o.v2
}

// operation is one REST operation, in a version-neutral form the v2 and
// v3 documents are written from.
type operation struct {
	method, action string
	id             string                  // operationId
	gvk            schema.GroupVersionKind // x-kubernetes-group-version-kind
	body           string                  // definition name of the request body, if any
	bodyTypes      []string                // its media types
	response       string                  // definition name of the 200 response
	params         []string                // query parameters
}

// pathOperations are the operations of one path.
type pathOperations struct {
	named, namespaced bool // the path has {name}, {namespace}
	ops               []operation
}

var (
	writeQueryParams = []string{"dryRun", "fieldManager", "fieldValidation", "pretty"}
	patchBodyTypes   = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	objectMediaTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	queryParamDocs   = map[string]string{
		"dryRun":             "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
		"fieldManager":       "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
		"fieldValidation":    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore, - Warn (the default), - Strict: fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present.",
		"force":              "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
		"pretty":             "If 'true', then the output is pretty printed.",
		"labelSelector":      "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
		"fieldSelector":      "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
		"limit":              "limit is a maximum number of responses to return for a list call.",
		"continue":           "The continue option should be set when retrieving more results from the server.",
		"resourceVersion":    "resourceVersion sets a constraint on what resource versions a request may be served from.",
		"watch":              "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
		"gracePeriodSeconds": "The duration in seconds before the object should be deleted. Value must be non-negative integer.",
		"propagationPolicy":  "Whether and how garbage collection will be performed: Orphan, Background or Foreground.",
	}
)

const (
	statusDef       = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
	patchDef        = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
	deleteOptsDef   = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
	scaleDefinition = "io.k8s.api.autoscaling.v1.Scale"
)

// createSubresources are the POST-only subresources and the kind they take.
var createSubresources = map[string]schema.GroupVersionKind{
	registry.SubBinding:  corev1.SchemeGroupVersion.WithKind("Binding"),
	registry.SubEviction: policyv1.SchemeGroupVersion.WithKind("Eviction"),
	registry.SubToken:    authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"),
}

// defName is the definition name of the Go type of gvk in client-go's
// scheme.
func defName(gvk schema.GroupVersionKind) string {
	obj, err := scheme.Scheme.New(gvk)
	if err != nil {
		panic(fmt.Sprintf("openapi: %v", err)) // a programming error: the kinds above are all registered
	}
	return openapi.Name(reflect.TypeOf(obj))
}

// resourceOperations adds the operations of r to paths, by path.
func resourceOperations(paths map[string]*pathOperations, r *registry.Resource) {
	kind := openapi.Name(reflect.TypeOf(r.New()))
	list := openapi.Name(reflect.TypeOf(r.NewList()))
	gvk := r.GroupVersionKind()
	base := "/" + gvPath(r.Group, r.Version)
	if r.Namespaced {
		base += "/namespaces/{namespace}"
	}
	add := func(path string, named bool, ops ...operation) {
		for i := range ops {
			if ops[i].gvk.Empty() {
				ops[i].gvk = gvk
			}
			suffix := ""
			if named && strings.Count(strings.TrimPrefix(path, base), "/") == 3 {
				suffix = strings.ToUpper(path[strings.LastIndexByte(path, '/')+1:][:1]) + path[strings.LastIndexByte(path, '/')+2:]
			}
			ops[i].id = ops[i].action + r.Kind + suffix
		}
		paths[path] = &pathOperations{named: named, namespaced: r.Namespaced, ops: ops}
	}
	listParams := []string{"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch", "pretty"}
	patch := operation{method: "patch", action: "patch", body: patchDef, bodyTypes: patchBodyTypes, response: kind,
		params: append(append([]string{}, writeQueryParams...), "force")}
	add(base+"/"+r.Name, false,
		operation{method: "get", action: "list", response: list, params: listParams},
		operation{method: "post", action: "post", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
		operation{method: "delete", action: "deletecollection", body: deleteOptsDef, bodyTypes: objectMediaTypes[:1], response: statusDef, params: listParams[:5]})
	add(base+"/"+r.Name+"/{name}", true,
		operation{method: "get", action: "get", response: kind, params: []string{"pretty"}},
		operation{method: "put", action: "put", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
		patch,
		operation{method: "delete", action: "delete", body: deleteOptsDef, bodyTypes: objectMediaTypes[:1], response: statusDef, params: []string{"dryRun", "gracePeriodSeconds", "propagationPolicy", "pretty"}})
	if r.HasSubresource(registry.SubStatus) {
		add(base+"/"+r.Name+"/{name}/status", true,
			operation{method: "get", action: "get", response: kind, params: []string{"pretty"}},
			operation{method: "put", action: "put", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
			patch)
	}
	if r.HasSubresource(registry.SubFinalize) {
		add(base+"/"+r.Name+"/{name}/finalize", true,
			operation{method: "put", action: "put", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams})
	}
	if r.HasSubresource(registry.SubScale) {
		scaleGVK := autoscalingv1.SchemeGroupVersion.WithKind("Scale")
		add(base+"/"+r.Name+"/{name}/scale", true,
			operation{method: "get", action: "get", gvk: scaleGVK, response: scaleDefinition, params: []string{"pretty"}},
			operation{method: "put", action: "put", gvk: scaleGVK, body: scaleDefinition, bodyTypes: objectMediaTypes, response: scaleDefinition, params: writeQueryParams},
			operation{method: "patch", action: "patch", gvk: scaleGVK, body: patchDef, bodyTypes: patchBodyTypes, response: scaleDefinition, params: append(append([]string{}, writeQueryParams...), "force")})
	}
	for sub, subGVK := range createSubresources {
		if r.HasSubresource(sub) {
			def := defName(subGVK)
			add(base+"/"+r.Name+"/{name}/"+sub, true,
				operation{method: "post", action: "post", gvk: subGVK, body: def, bodyTypes: objectMediaTypes, response: def, params: writeQueryParams})
		}
	}
}

// reviewOperations adds the create-only review resources of group/version
// to paths.
func reviewOperations(paths map[string]*pathOperations, group, version string) {
	for _, ar := range reviewAPIResources(group, version) {
		gvk := schema.GroupVersionKind{Group: group, Version: version, Kind: ar.Kind}
		def := defName(gvk)
		base := "/" + gvPath(group, version)
		if ar.Namespaced {
			base += "/namespaces/{namespace}"
		}
		paths[base+"/"+ar.Name] = &pathOperations{namespaced: ar.Namespaced, ops: []operation{{
			method: "post", action: "post", id: "create" + ar.Kind, gvk: gvk,
			body: def, bodyTypes: objectMediaTypes, response: def, params: writeQueryParams,
		}}}
	}
}

// openAPIGroupVersions are the group/versions with documents: the table's
// and the review resources'.
func (s *Server) openAPIGroupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	for _, g := range s.discoveryGroups() {
		for _, v := range s.discoveryVersions(g) {
			out = append(out, schema.GroupVersion{Group: g, Version: v})
		}
	}
	return out
}

// operations returns the operations of group/version by path.
func (s *Server) operations(group, version string) map[string]*pathOperations {
	paths := map[string]*pathOperations{}
	for _, r := range s.table.GroupResources(group) {
		if r.Version == version {
			resourceOperations(paths, r)
		}
	}
	reviewOperations(paths, group, version)
	return paths
}

func gvkExtension(gvk schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// openAPIV3Doc is the v3 document of one group/version.
func (s *Server) openAPIV3Doc(defs openapi.Definitions, group, version string) *spec3.OpenAPI {
	ref := func(name string) *spec.Schema { return spec.RefSchema(openapi.V3.RefPrefix + name) }
	pathParam := func(name string) *spec3.Parameter {
		return &spec3.Parameter{ParameterProps: spec3.ParameterProps{Name: name, In: "path", Required: true, Schema: spec.StringProperty()}}
	}
	paths := map[string]*spec3.Path{}
	var roots []string
	for p, po := range s.operations(group, version) {
		path := &spec3.Path{}
		if po.named {
			path.Parameters = append(path.Parameters, pathParam("name"))
		}
		if po.namespaced {
			path.Parameters = append(path.Parameters, pathParam("namespace"))
		}
		for _, op := range po.ops {
			o := &spec3.Operation{OperationProps: spec3.OperationProps{
				OperationId: op.id,
				Responses: &spec3.Responses{ResponsesProps: spec3.ResponsesProps{StatusCodeResponses: map[int]*spec3.Response{
					http.StatusOK: {ResponseProps: spec3.ResponseProps{Description: "OK", Content: map[string]*spec3.MediaType{
						"application/json": {MediaTypeProps: spec3.MediaTypeProps{Schema: ref(op.response)}}}}},
					http.StatusUnauthorized: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
				}}},
			}}
			for _, q := range op.params {
				o.Parameters = append(o.Parameters, &spec3.Parameter{ParameterProps: spec3.ParameterProps{
					Name: q, In: "query", Description: queryParamDocs[q], Schema: spec.StringProperty()}})
			}
			if op.body != "" {
				content := map[string]*spec3.MediaType{}
				for _, t := range op.bodyTypes {
					content[t] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{Schema: ref(op.body)}}
				}
				o.RequestBody = &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: content, Required: op.method != "delete"}}
			}
			o.AddExtension("x-kubernetes-action", op.action)
			o.AddExtension("x-kubernetes-group-version-kind", gvkExtension(op.gvk))
			switch op.method {
			case "get":
				path.Get = o
			case "post":
				path.Post = o
			case "put":
				path.Put = o
			case "patch":
				path.Patch = o
			case "delete":
				path.Delete = o
			}
			roots = append(roots, op.response, op.body)
		}
		paths[p] = path
	}
	schemas := map[string]*spec.Schema{}
	for _, n := range defs.Closure(roots...) {
		schemas[n] = defs[n]
	}
	return &spec3.OpenAPI{
		Version:    "3.0.0",
		Info:       &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes (kubelab)", Version: s.cfg.Version.GitVersion}},
		Paths:      &spec3.Paths{Paths: paths},
		Components: &spec3.Components{Schemas: schemas},
	}
}

// openAPIV2Doc is the v2 (swagger) document of every group/version.
func (s *Server) openAPIV2Doc(defs openapi.Definitions) *spec.Swagger {
	paths := map[string]spec.PathItem{}
	for _, gv := range s.openAPIGroupVersions() {
		for p, po := range s.operations(gv.Group, gv.Version) {
			item := spec.PathItem{}
			if po.named {
				item.Parameters = append(item.Parameters, v2Param("name", "path", "name of the object"))
			}
			if po.namespaced {
				item.Parameters = append(item.Parameters, v2Param("namespace", "path", "object name and auth scope, such as for teams and projects"))
			}
			for _, op := range po.ops {
				o := &spec.Operation{OperationProps: spec.OperationProps{
					ID:       op.id,
					Consumes: op.bodyTypes,
					Produces: []string{"application/json", "application/yaml"},
					Responses: &spec.Responses{ResponsesProps: spec.ResponsesProps{StatusCodeResponses: map[int]spec.Response{
						http.StatusOK: {ResponseProps: spec.ResponseProps{Description: "OK", Schema: spec.RefSchema(openapi.V2.RefPrefix + op.response)}},
					}}},
				}}
				for _, q := range op.params {
					o.Parameters = append(o.Parameters, v2Param(q, "query", queryParamDocs[q]))
				}
				if op.body != "" {
					o.Parameters = append(o.Parameters, spec.Parameter{ParamProps: spec.ParamProps{Name: "body", In: "body", Required: op.method != "delete", Schema: spec.RefSchema(openapi.V2.RefPrefix + op.body)}})
				}
				o.AddExtension("x-kubernetes-action", op.action)
				o.AddExtension("x-kubernetes-group-version-kind", gvkExtension(op.gvk))
				switch op.method {
				case "get":
					item.Get = o
				case "post":
					item.Post = o
				case "put":
					item.Put = o
				case "patch":
					item.Patch = o
				case "delete":
					item.Delete = o
				}
			}
			paths[p] = item
		}
	}
	definitions := spec.Definitions{}
	for n, d := range defs {
		definitions[n] = *d
	}
	return &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes (kubelab)", Version: s.cfg.Version.GitVersion}},
		Paths:       &spec.Paths{Paths: paths},
		Definitions: definitions,
	}}
}

// v2Param is a string parameter of a v2 operation.
func v2Param(name, in, desc string) spec.Parameter {
	return spec.Parameter{ParamProps: spec.ParamProps{Name: name, In: in, Description: desc, Required: in == "path"},
		SimpleSchema: spec.SimpleSchema{Type: "string"}}
}

// openAPIV2Proto is the v2 document in gnostic's protobuf form, which
// client-go's discovery client asks for.
func (s *Server) openAPIV2Proto() ([]byte, error) {
	v2 := s.openAPIV2JSON()
	o := s.openAPI()
	o.protoOnce.Do(func() {
		doc, err := openapi_v2.ParseDocument(v2)
		if err != nil {
			o.protoErr = fmt.Errorf("openapi v2 to protobuf: %w", err)
			return
		}
		o.v2Proto, o.protoErr = proto.Marshal(doc)
	})
	return o.v2Proto, o.protoErr
}

// openAPIV2ProtoType is the media type of the v2 protobuf document. Clients
// ask for it as "…spec.v2@v1.0+protobuf", which is not a valid media type
// to answer with: upstream answers with this form.
const openAPIV2ProtoType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

// serveOpenAPI serves /openapi/v2, /openapi/v3 and its group/version
// documents; it reports whether the path was one of them.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request, path string) bool {
	if path == "/openapi/v2" {
		if strings.Contains(r.Header.Get("Accept"), "protobuf") {
			data, err := s.openAPIV2Proto()
			if err != nil {
				writeError(w, err)
				return true
			}
			writeOpenAPI(w, r, openAPIV2ProtoType, data)
			return true
		}
		writeOpenAPI(w, r, "application/json", s.openAPIV2JSON())
		return true
	}
	rest, ok := strings.CutPrefix(path, "/openapi/v3")
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "/")
	o := s.openAPIV3Docs()
	if rest == "" {
		index := map[string]any{}
		keys := make([]string, 0, len(o.docs))
		for p := range o.docs {
			keys = append(keys, p)
		}
		sort.Strings(keys)
		for _, p := range keys {
			index[p] = map[string]any{"serverRelativeURL": "/openapi/v3/" + p + "?hash=" + o.hashes[p]}
		}
		writeJSON(w, http.StatusOK, map[string]any{"paths": index})
		return true
	}
	doc, ok := o.docs[rest]
	if !ok {
		return false
	}
	if h := r.URL.Query().Get("hash"); h != "" && h == o.hashes[rest] {
		// The hash pins the content: cacheable for good, as upstream.
		w.Header().Set("Cache-Control", "public, immutable")
		w.Header().Set("Expires", "Thu, 31 Dec 2099 23:59:59 GMT")
	}
	etag := `"` + o.hashes[rest] + `"`
	w.Header().Set("Etag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	writeOpenAPI(w, r, "application/json", doc)
	return true
}

func writeOpenAPI(w http.ResponseWriter, r *http.Request, contentType string, data []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}
