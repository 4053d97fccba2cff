package postgres

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// uuidArray is a uuid[] column. PostgreSQL prints uuids without quotes, so the text form is a
// plain comma-separated list in braces.
type uuidArray []uuid.UUID

// Value encodes the array in PostgreSQL's text form.
func (a uuidArray) Value() (driver.Value, error) {
	parts := make([]string, len(a))
	for i, id := range a {
		parts[i] = id.String()
	}
	return "{" + strings.Join(parts, ",") + "}", nil
}

// Scan decodes the array from PostgreSQL's text form.
func (a *uuidArray) Scan(src any) error {
	text, err := textOf(src)
	if err != nil {
		return err
	}
	body := strings.TrimSuffix(strings.TrimPrefix(text, "{"), "}")
	if body == "" {
		*a = uuidArray{}
		return nil
	}
	parts := strings.Split(body, ",")
	out := make(uuidArray, len(parts))
	for i, p := range parts {
		if out[i], err = uuid.Parse(p); err != nil {
			return fmt.Errorf("scan uuid[] element %q: %w", p, err)
		}
	}
	*a = out
	return nil
}

// textArray is a text[] column.
type textArray []string

// Value encodes the array in PostgreSQL's text form, quoting every element.
func (a textArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// Scan decodes a one-dimensional array without NULL elements from PostgreSQL's text form.
func (a *textArray) Scan(src any) error {
	text, err := textOf(src)
	if err != nil {
		return err
	}
	if len(text) < 2 || text[0] != '{' || text[len(text)-1] != '}' {
		return fmt.Errorf("scan text[]: malformed array %q", text)
	}
	body := text[1 : len(text)-1]
	out := textArray{}
	for len(body) > 0 {
		var elem strings.Builder
		if body[0] == '"' {
			i := 1
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				elem.WriteByte(body[i])
			}
			if i >= len(body) {
				return fmt.Errorf("scan text[]: unterminated element in %q", text)
			}
			body = body[i+1:]
		} else {
			end := strings.IndexByte(body, ',')
			if end < 0 {
				end = len(body)
			}
			elem.WriteString(body[:end])
			body = body[end:]
		}
		out = append(out, elem.String())
		body = strings.TrimPrefix(body, ",")
	}
	*a = out
	return nil
}

// jsonColumn is a jsonb column holding any JSON value of type T.
type jsonColumn[T any] struct{ V T }

// Value encodes the value as JSON.
func (j jsonColumn[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(j.V)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan decodes the value from JSON.
func (j *jsonColumn[T]) Scan(src any) error {
	text, err := textOf(src)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(text), &j.V)
}

func textOf(src any) (string, error) {
	switch v := src.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	default:
		return "", fmt.Errorf("scan: unsupported source type %T", src)
	}
}
