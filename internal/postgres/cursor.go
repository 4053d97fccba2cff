package postgres

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
)

// cursor is the position after the last item of a page: the sort key and id of that item, and
// a fingerprint of the list's filter and sort so a cursor cannot be replayed against another
// list.
type cursor struct {
	List string     `json:"l"`
	Time *time.Time `json:"t,omitempty"`
	Text *string    `json:"s,omitempty"`
	ID   uuid.UUID  `json:"i"`
}

// fingerprint identifies a list by its filter (without the page) and sort.
func fingerprint(filter any) string {
	b, _ := json.Marshal(filter)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor issued for the list with the given fingerprint. An empty
// string is the start of the list.
func decodeCursor(s, list string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "is not a cursor of this list with these filters and sort; start again without a cursor"})
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.List != list || (c.Time == nil && c.Text == nil) {
		return nil, bad
	}
	return &c, nil
}
