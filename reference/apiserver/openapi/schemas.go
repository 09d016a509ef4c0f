// Package openapi generates the OpenAPI schemas of the k8s.io/api types by
// reflection, the way upstream's openapi-gen does from source: definitions
// named after the Go package and type (io.k8s.api.core.v1.Pod), field
// descriptions from the types' SwaggerDoc methods, required fields, the
// special types' OpenAPISchemaType/OpenAPISchemaFormat, patch strategies and
// merge keys from the struct tags, list types and map keys (what
// server-side apply needs), and x-kubernetes-group-version-kind on the
// top-level kinds.
//
// k8s.io/api ships no OpenAPI, and the +listType, +optional and +default
// markers openapi-gen reads are Go comments, invisible at run time. This
// package therefore infers them: a field without omitempty is required; a
// list with patch strategy "merge" and a merge key is a map list keyed by
// the merge key (a set without one); the few lists whose upstream keys are
// more than the merge key, and the defaults those keys need, are listed in
// overrides.go.
package openapi

import (
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Kind is a top-level kind and its Go struct type. A Kind with an empty
// GVK only asks for the type's definition.
type Kind struct {
	GVK  schema.GroupVersionKind
	Type reflect.Type
}

// KindOf returns the Kind of obj (a pointer to a k8s.io/api struct) as gvk.
func KindOf(gvk schema.GroupVersionKind, obj runtime.Object) Kind {
	return Kind{GVK: gvk, Type: reflect.TypeOf(obj).Elem()}
}

// Style says how references are written: OpenAPI v2 refers to
// "#/definitions/NAME" and puts a property's description next to its
// $ref; OpenAPI v3 refers to "#/components/schemas/NAME" and, as siblings of
// $ref are ignored there, wraps a described reference in allOf.
type Style struct {
	// RefPrefix precedes a definition name in a $ref.
	RefPrefix string
	// AllOf wraps references that carry a description or default in a
	// one-element allOf (OpenAPI v3).
	AllOf bool
}

var (
	// V2 is the OpenAPI v2 (swagger) style.
	V2 = Style{RefPrefix: "#/definitions/"}
	// V3 is the OpenAPI v3 style.
	V3 = Style{RefPrefix: "#/components/schemas/", AllOf: true}
)

// Definitions are generated schemas keyed by definition name.
type Definitions map[string]*spec.Schema

// Name is the definition name of a named Go type: its package path and
// name in reverse-domain form, e.g. io.k8s.api.core.v1.Pod.
func Name(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return util.ToRESTFriendlyName(t.PkgPath() + "." + t.Name())
}

// Generate returns the definitions of kinds and of every type they reach,
// in the given style. Each kind's definition carries its
// x-kubernetes-group-version-kind (a Go type registered as several kinds
// lists them all).
func Generate(kinds []Kind, style Style) Definitions {
	b := &builder{style: style, defs: Definitions{}, gvks: map[reflect.Type][]schema.GroupVersionKind{}}
	for _, k := range kinds {
		if !k.GVK.Empty() {
			b.gvks[k.Type] = append(b.gvks[k.Type], k.GVK)
		}
	}
	for _, k := range kinds {
		b.define(k.Type)
	}
	return b.defs
}

// Closure returns the names of the definitions roots refer to, directly or
// through other definitions, roots included.
func (d Definitions) Closure(roots ...string) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(name string)
	visit = func(name string) {
		if seen[name] || d[name] == nil {
			return
		}
		seen[name] = true
		out = append(out, name)
		walkRefs(d[name], func(ref string) { visit(ref) })
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// walkRefs calls fn with the definition name of every $ref in s.
func walkRefs(s *spec.Schema, fn func(string)) {
	if s == nil {
		return
	}
	if r := s.Ref.String(); r != "" {
		fn(r[strings.LastIndexByte(r, '/')+1:])
	}
	for i := range s.AllOf {
		walkRefs(&s.AllOf[i], fn)
	}
	for i := range s.OneOf {
		walkRefs(&s.OneOf[i], fn)
	}
	for k := range s.Properties {
		p := s.Properties[k]
		walkRefs(&p, fn)
	}
	if s.Items != nil {
		walkRefs(s.Items.Schema, fn)
	}
	if s.AdditionalProperties != nil {
		walkRefs(s.AdditionalProperties.Schema, fn)
	}
}

// The interfaces of types whose JSON form is not their Go structure.
type (
	schemaTyper interface {
		OpenAPISchemaType() []string
		OpenAPISchemaFormat() string
	}
	v3OneOfTyper interface {
		OpenAPIV3OneOfTypes() []string
	}
	swaggerDocer interface {
		SwaggerDoc() map[string]string
	}
)

var rawExtensionType = reflect.TypeOf(runtime.RawExtension{})

type builder struct {
	style Style
	defs  Definitions
	gvks  map[reflect.Type][]schema.GroupVersionKind
}

func (b *builder) ref(name string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(b.style.RefPrefix + name)}}
}

// swaggerDoc returns the SwaggerDoc of t (a struct), or nil.
func swaggerDoc(t reflect.Type) map[string]string {
	if d, ok := reflect.New(t).Interface().(swaggerDocer); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// isSpecial reports whether t serializes as a scalar or free-form value
// rather than as its Go structure.
func isSpecial(t reflect.Type) bool {
	if t == rawExtensionType {
		return true
	}
	_, ok := reflect.New(t).Interface().(schemaTyper)
	return ok
}

// define adds the definition of the named type t (a struct or special type)
// and returns its name.
func (b *builder) define(t reflect.Type) string {
	name := Name(t)
	if _, ok := b.defs[name]; ok {
		return name
	}
	s := &spec.Schema{}
	b.defs[name] = s // before the fields: types may refer to themselves
	doc := swaggerDoc(t)
	s.Description = doc[""]
	if s.Description == "" {
		s.Description = specialDescriptions[name]
	}
	switch v := reflect.New(t).Interface().(type) {
	case schemaTyper:
		if oneOf, ok := v.(v3OneOfTyper); ok && b.style.AllOf && len(oneOf.OpenAPIV3OneOfTypes()) > 0 {
			for _, typ := range oneOf.OpenAPIV3OneOfTypes() {
				s.OneOf = append(s.OneOf, *spec.StringProperty().Typed(typ, ""))
			}
			s.Format = v.OpenAPISchemaFormat()
		} else {
			s.Type = v.OpenAPISchemaType()
			s.Format = v.OpenAPISchemaFormat()
		}
		return name
	}
	if t == rawExtensionType {
		s.Type = spec.StringOrArray{"object"}
		return name
	}
	s.Type = spec.StringOrArray{"object"}
	s.Properties = map[string]spec.Schema{}
	b.addFields(s, t, doc, name)
	if mt, ok := mapTypes[name]; ok {
		s.AddExtension("x-kubernetes-map-type", mt)
	}
	if gvks := b.gvks[t]; len(gvks) > 0 {
		var list []any
		for _, gvk := range gvks {
			list = append(list, map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
		}
		s.AddExtension("x-kubernetes-group-version-kind", list)
	}
	return name
}

// addFields adds the JSON fields of struct t to s, flattening inlined
// (embedded) structs. owner is the definition name, for overrides.
func (b *builder) addFields(s *spec.Schema, t reflect.Type, doc map[string]string, owner string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct && !isSpecial(ft) {
			b.addFields(s, ft, swaggerDoc(ft), owner)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		prop := b.fieldSchema(f, owner+"."+name)
		prop.Description = doc[name]
		if !optional {
			s.Required = append(s.Required, name)
			if f.Type.Kind() != reflect.Pointer && prop.Default == nil {
				prop.Default = zeroDefault(f.Type)
			}
		} else if f.Type.Kind() == reflect.Struct && !isSpecial(f.Type) && prop.Default == nil {
			prop.Default = map[string]any{}
		}
		s.Properties[name] = b.wrap(prop)
	}
}

// zeroDefault is the default upstream gives a required, non-pointer field:
// its zero value (nil for lists, maps and special types).
func zeroDefault(t reflect.Type) any {
	switch t.Kind() {
	case reflect.String:
		if !isSpecialScalar(t) {
			return ""
		}
	case reflect.Bool:
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 0
	case reflect.Float32, reflect.Float64:
		return 0
	case reflect.Struct:
		if !isSpecial(t) {
			return map[string]any{}
		}
	}
	return nil
}

func isSpecialScalar(t reflect.Type) bool {
	_, ok := reflect.New(t).Interface().(schemaTyper)
	return ok
}

// wrap turns a $ref with siblings into allOf in the v3 style.
func (b *builder) wrap(s spec.Schema) spec.Schema {
	if !b.style.AllOf || s.Ref.String() == "" || (s.Description == "" && s.Default == nil) {
		return s
	}
	ref := spec.Schema{SchemaProps: spec.SchemaProps{Ref: s.Ref}}
	s.Ref = spec.Ref{}
	s.AllOf = []spec.Schema{ref}
	return s
}

// fieldSchema is the schema of struct field f, with its patch strategy and
// list type; key is "<definition>.<json name>".
func (b *builder) fieldSchema(f reflect.StructField, key string) spec.Schema {
	s := b.typeSchema(f.Type)
	strategy, mergeKey := f.Tag.Get("patchStrategy"), f.Tag.Get("patchMergeKey")
	if strategy != "" {
		s.AddExtension("x-kubernetes-patch-strategy", strategy)
	}
	if mergeKey != "" {
		s.AddExtension("x-kubernetes-patch-merge-key", mergeKey)
	}
	if o, ok := fieldOverrides[key]; ok {
		if o.listType != "" {
			s.AddExtension("x-kubernetes-list-type", o.listType)
		}
		if len(o.listMapKeys) > 0 {
			s.AddExtension("x-kubernetes-list-map-keys", toAny(o.listMapKeys))
		}
		if o.mapType != "" {
			s.AddExtension("x-kubernetes-map-type", o.mapType)
		}
		if o.def != nil {
			s.Default = o.def
		}
		return s
	}
	if s.Type.Contains("array") && strings.Contains(strategy, "merge") {
		if mergeKey != "" {
			s.AddExtension("x-kubernetes-list-type", "map")
			s.AddExtension("x-kubernetes-list-map-keys", []any{mergeKey})
		} else {
			s.AddExtension("x-kubernetes-list-type", "set")
		}
	}
	return s
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// typeSchema is the schema of a value of type t: inline for scalars, lists
// and maps, a $ref for structs and special types.
func (b *builder) typeSchema(t reflect.Type) spec.Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct || isSpecial(t) {
		if t.Name() == "" {
			s := spec.Schema{}
			s.Type = spec.StringOrArray{"object"}
			return s
		}
		return b.ref(b.define(t))
	}
	switch t.Kind() {
	case reflect.String:
		return *spec.StringProperty()
	case reflect.Bool:
		return *spec.BoolProperty()
	case reflect.Int32, reflect.Int16, reflect.Int8, reflect.Uint16, reflect.Uint8:
		return *spec.Int32Property()
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return *spec.Int64Property()
	case reflect.Float32:
		return *spec.Float32Property()
	case reflect.Float64:
		return *spec.Float64Property()
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			s := *spec.StringProperty()
			s.Format = "byte"
			return s
		}
		item := b.typeSchema(t.Elem())
		return *spec.ArrayProperty(&item)
	case reflect.Map:
		elem := b.typeSchema(t.Elem())
		return *spec.MapProperty(&elem)
	}
	// interface{} and anything else: any JSON value.
	s := spec.Schema{}
	s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	return s
}
