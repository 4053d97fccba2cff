package crm

// Page sizes of lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// PageRequest asks for one page of a list: at most Limit items after the opaque Cursor of the
// previous page (empty for the first page).
type PageRequest struct {
	Limit  int
	Cursor string
}

// LimitOrDefault returns the page size to use.
func (p PageRequest) LimitOrDefault() int {
	if p.Limit <= 0 {
		return DefaultPageSize
	}
	return min(p.Limit, MaxPageSize)
}
