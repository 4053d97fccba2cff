package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
)

// decimalPattern is the shape of a non-negative money amount: at most 15 integer digits and 4
// decimals, no sign, no exponent.
var decimalPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$`)

// signedDecimalPattern is decimalPattern with an optional minus sign.
var signedDecimalPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$`)

// maxJSONObjectBytes bounds custom attributes and metadata.
const maxJSONObjectBytes = 64 << 10

// Validator checks domain invariants with struct tags and reports them as field errors whose
// pointers use the JSON names of the fields.
type Validator struct {
	v *validator.Validate
}

// NewValidator returns a Validator. It is safe for concurrent use; create one per process.
func NewValidator() *Validator {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	mustRegister(v, "decimal", func(fl validator.FieldLevel) bool {
		return decimalPattern.MatchString(fl.Field().String())
	})
	mustRegister(v, "signed_decimal", func(fl validator.FieldLevel) bool {
		return signedDecimalPattern.MatchString(fl.Field().String())
	})
	mustRegister(v, "json_size", func(fl validator.FieldLevel) bool {
		if fl.Field().Len() == 0 {
			return true
		}
		b, err := json.Marshal(fl.Field().Interface())
		return err == nil && len(b) <= maxJSONObjectBytes
	})
	mustRegister(v, "tag", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return s != "" && len(s) <= 64 && !strings.ContainsAny(s, " \t\r\n,")
	})
	return &Validator{v: v}
}

func mustRegister(v *validator.Validate, tag string, fn validator.Func) {
	if err := v.RegisterValidation(tag, fn); err != nil {
		panic(fmt.Sprintf("register validation %q: %v", tag, err))
	}
}

// Struct validates s and returns its invalid fields, with pointers prefixed by prefix (for
// example "/items/3"), or nil when s is valid.
func (v *Validator) Struct(s any, prefix string) []FieldError {
	err := v.v.Struct(s)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return []FieldError{{Pointer: prefix + "/", Message: err.Error()}}
	}
	fields := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, FieldError{Pointer: prefix + pointerOf(fe.Namespace()), Message: messageOf(fe)})
	}
	return fields
}

// pointerOf turns a validator namespace such as "CustomerDraft.external_refs[1].source" into a
// JSON Pointer such as "/external_refs/1/source".
func pointerOf(namespace string) string {
	_, rest, found := strings.Cut(namespace, ".")
	if !found {
		return "/"
	}
	var b strings.Builder
	for _, part := range strings.Split(rest, ".") {
		name, index, hasIndex := strings.Cut(part, "[")
		b.WriteString("/")
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(name))
		if hasIndex {
			b.WriteString("/")
			b.WriteString(strings.TrimSuffix(index, "]"))
		}
	}
	return b.String()
}

func messageOf(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required", "required_with":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "iso3166_1_alpha2":
		return "must be an ISO 3166-1 alpha-2 country code such as \"DE\""
	case "iso4217":
		return "must be an ISO 4217 currency code such as \"EUR\""
	case "decimal":
		return "must be a non-negative decimal string with at most 15 integer digits and 4 decimals, such as \"12.50\""
	case "signed_decimal":
		return "must be a decimal string with at most 15 integer digits and 4 decimals, such as \"-3.20\""
	case "json_size":
		return fmt.Sprintf("must be at most %d bytes as JSON", maxJSONObjectBytes)
	case "tag":
		return "must be 1 to 64 characters without spaces or commas"
	case "oneof":
		return fmt.Sprintf("must be one of: %s", strings.ReplaceAll(fe.Param(), " ", ", "))
	case "max":
		if fe.Kind() == reflect.Slice || fe.Kind() == reflect.Map {
			return fmt.Sprintf("must have at most %s items", fe.Param())
		}
		return fmt.Sprintf("must be at most %s characters", fe.Param())
	case "min":
		if fe.Kind() == reflect.Slice || fe.Kind() == reflect.Map {
			return fmt.Sprintf("must have at least %s items", fe.Param())
		}
		return fmt.Sprintf("must be at least %s characters", fe.Param())
	case "gte":
		return fmt.Sprintf("must be at least %s", fe.Param())
	case "lte":
		return fmt.Sprintf("must be at most %s", fe.Param())
	case "excluded_unless", "excluded_if":
		return "is only allowed for business accounts"
	case "unique":
		return "must not repeat a source"
	case "printascii", "printunicode":
		return "must be printable text"
	}
	return fmt.Sprintf("fails the %q rule", fe.Tag())
}
