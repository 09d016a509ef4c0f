package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Capability names an optional feature a plugin declares, in the form
// "area:feature" (for example "store:durable"). The conformance suites run a
// capability's specs only for plugins that declare it and report the others
// as skipped. Mandatory behaviour has no Capability: every plugin is tested
// for it.
type Capability string

// Optional store capabilities.
const (
	// CapStoreDurable: data committed before Close is there again when a
	// store is opened anew with the same StoreConfig (same DataDir or the
	// same endpoints), including after a crash of the process.
	CapStoreDurable Capability = "store:durable"
	// CapStoreTTL: Create honours CreateOptions.TTL.
	CapStoreTTL Capability = "store:ttl"
)

// Area returns the part of the capability before the colon.
func (c Capability) Area() string {
	area, _, _ := strings.Cut(string(c), ":")
	return area
}

// Validate checks the "area:feature" form.
func (c Capability) Validate() error {
	area, feature, ok := strings.Cut(string(c), ":")
	if !ok || area == "" || feature == "" || strings.ContainsAny(string(c), " \t\n,") {
		return fmt.Errorf("capability %q is not of the form \"area:feature\": %w", c, ErrInvalid)
	}
	return nil
}

// Capabilities is a set of declared capabilities.
type Capabilities []Capability

// Has reports whether c is declared.
func (cs Capabilities) Has(c Capability) bool { return slices.Contains(cs, c) }
