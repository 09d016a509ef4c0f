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
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
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
// and list kind, and the meta types the operations refer to.
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
		for _, g := range s.table.Groups() {
			for _, v := range s.table.Versions(g) {
				p := gvPath(g, v)
				docs[p] = mustJSON(s.openAPIV3Doc(o.v3, g, v))
				sum := sha512.Sum512(docs[p])
				hashes[p] = strings.ToUpper(hex.EncodeToString(sum[:]))
			}
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

// operation is one REST operation of a resource, in a version-neutral form
// the v2 and v3 documents are written from.
type operation struct {
	method, action string
	body           string   // definition name of the request body, if any
	bodyTypes      []string // its media types
	response       string   // definition name of the 200 response
	params         []string // query parameters
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

// resourceOperations lists the operations of r by path, relative to the
// group/version root.
func resourceOperations(r *registry.Resource) map[string][]operation {
	kind := openapi.Name(reflect.TypeOf(r.New()))
	list := openapi.Name(reflect.TypeOf(r.NewList()))
	status := "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
	base := "/" + gvPath(r.Group, r.Version)
	if r.Namespaced {
		base += "/namespaces/{namespace}"
	}
	listParams := []string{"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch", "pretty"}
	patch := operation{method: "patch", action: "patch", body: "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", bodyTypes: patchBodyTypes, response: kind,
		params: append(append([]string{}, writeQueryParams...), "force")}
	ops := map[string][]operation{
		base + "/" + r.Name: {
			{method: "get", action: "list", response: list, params: listParams},
			{method: "post", action: "post", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
			{method: "delete", action: "deletecollection", body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", bodyTypes: objectMediaTypes[:1], response: status, params: listParams[:5]},
		},
		base + "/" + r.Name + "/{name}": {
			{method: "get", action: "get", response: kind, params: []string{"pretty"}},
			{method: "put", action: "put", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
			patch,
			{method: "delete", action: "delete", body: "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", bodyTypes: objectMediaTypes[:1], response: status, params: []string{"dryRun", "gracePeriodSeconds", "propagationPolicy", "pretty"}},
		},
	}
	if r.HasSubresource(registry.SubStatus) {
		ops[base+"/"+r.Name+"/{name}/status"] = []operation{
			{method: "get", action: "get", response: kind, params: []string{"pretty"}},
			{method: "put", action: "put", body: kind, bodyTypes: objectMediaTypes, response: kind, params: writeQueryParams},
			patch,
		}
	}
	if r.HasSubresource(registry.SubScale) {
		scale := "io.k8s.api.autoscaling.v1.Scale"
		ops[base+"/"+r.Name+"/{name}/scale"] = []operation{
			{method: "get", action: "get", response: scale, params: []string{"pretty"}},
			{method: "put", action: "put", body: scale, bodyTypes: objectMediaTypes, response: scale, params: writeQueryParams},
			{method: "patch", action: "patch", body: "io.k8s.apimachinery.pkg.apis.meta.v1.Patch", bodyTypes: patchBodyTypes[:3], response: scale, params: writeQueryParams},
		}
	}
	return ops
}

func operationID(action string, r *registry.Resource, path string) string {
	id := action + strings.ToUpper(r.Kind[:1]) + r.Kind[1:]
	if strings.HasSuffix(path, "/status") {
		id += "Status"
	} else if strings.HasSuffix(path, "/scale") {
		id += "Scale"
	}
	return id
}

func gvkExtension(gvk schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// openAPIV3Doc is the v3 document of one group/version.
func (s *Server) openAPIV3Doc(defs openapi.Definitions, group, version string) *spec3.OpenAPI {
	ref := func(name string) *spec.Schema { return spec.RefSchema(openapi.V3.RefPrefix + name) }
	paths := map[string]*spec3.Path{}
	var roots []string
	for _, r := range s.table.GroupResources(group) {
		if r.Version != version {
			continue
		}
		for p, ops := range resourceOperations(r) {
			path := &spec3.Path{}
			path.Parameters = append(path.Parameters, &spec3.Parameter{ParameterProps: spec3.ParameterProps{
				Name: "name", In: "path", Required: true, Schema: spec.StringProperty()}})
			for _, op := range ops {
				o := &spec3.Operation{OperationProps: spec3.OperationProps{
					OperationId: operationID(op.action, r, p),
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
				gvk := r.GroupVersionKind()
				if strings.HasSuffix(p, "/scale") {
					gvk = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
				}
				o.AddExtension("x-kubernetes-group-version-kind", gvkExtension(gvk))
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
			if !strings.Contains(p, "{name}") {
				path.Parameters = nil
			}
			if r.Namespaced {
				path.Parameters = append(path.Parameters, &spec3.Parameter{ParameterProps: spec3.ParameterProps{
					Name: "namespace", In: "path", Required: true, Schema: spec.StringProperty()}})
			}
			paths[p] = path
		}
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
	for _, r := range s.table.All() {
		for p, ops := range resourceOperations(r) {
			item := spec.PathItem{}
			for _, op := range ops {
				o := &spec.Operation{OperationProps: spec.OperationProps{
					ID:       operationID(op.action, r, p),
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
				o.AddExtension("x-kubernetes-group-version-kind", gvkExtension(r.GroupVersionKind()))
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
			if strings.Contains(p, "{name}") {
				item.Parameters = append(item.Parameters, v2Param("name", "path", "name of the object"))
			}
			if r.Namespaced {
				item.Parameters = append(item.Parameters, v2Param("namespace", "path", "object name and auth scope, such as for teams and projects"))
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
	if path == "/openapi/v2" || path == "/swagger.json" {
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
