// Package bad is doccheck's fixture.
package bad

func Undocumented() {}

// Documented is fine.
func Documented() {}

type T struct{}

func (T) Method() {}

type hidden struct{}

// Exported methods of unexported types are not API.
func (hidden) Method() {}

const (
	A = 1
)

// Group covers its members.
const (
	B = 2
)
