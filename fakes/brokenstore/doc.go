// Package brokenstore holds deliberately broken stores: thin wrappers of a
// correct spec.Store, each with one realistic bug, registered as store
// plugins so that the store conformance suite (conformance/store) can be
// shown to catch every one of them. A suite that passes a broken store is a
// broken suite.
//
// Each wrapper forwards to the store its base plugin opens and changes one
// behaviour; Catalog says which capability's specs must catch it. The names
// start with "broken-", so runners never pick them as default targets.
package brokenstore
