// Package crm is Centric's domain: customers, their hierarchy and their transactions, the rules
// that keep them valid, the services that change them and the store interfaces those services
// consume.
package crm

import (
	"errors"
	"fmt"
)

// ErrorCode classifies a domain error. Each code maps to one HTTP status at the API boundary.
type ErrorCode string

// The error codes of the domain.
const (
	CodeInvalid            ErrorCode = "validation_failed"
	CodeNotFound           ErrorCode = "not_found"
	CodeConflict           ErrorCode = "conflict"
	CodePreconditionFailed ErrorCode = "precondition_failed"
	CodeUnauthorized       ErrorCode = "unauthorized"
	CodeForbidden          ErrorCode = "forbidden"
	// CodeCursorExpired is a change feed cursor older than the changes still kept.
	CodeCursorExpired ErrorCode = "cursor_expired"
	// CodeIdempotencyKeyReused is an idempotency key sent again with another request.
	CodeIdempotencyKeyReused ErrorCode = "idempotency_key_reused"
	// CodeIdempotencyKeyInUse is an idempotency key whose first request is still running.
	CodeIdempotencyKeyInUse ErrorCode = "idempotency_key_in_use"
	CodeInternal            ErrorCode = "internal"
)

// FieldError names one invalid field by a JSON Pointer into the request and says what is wrong.
type FieldError struct {
	Pointer string
	Message string
}

// Error is a domain error: a code, a message a person can act on, and the invalid fields.
type Error struct {
	Code    ErrorCode
	Message string
	Fields  []FieldError
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error for the given fields.
func Invalid(fields ...FieldError) *Error {
	msg := "The request has 1 invalid field."
	if len(fields) != 1 {
		msg = fmt.Sprintf("The request has %d invalid fields.", len(fields))
	}
	if len(fields) == 1 {
		msg = fmt.Sprintf("Invalid %s: %s.", fields[0].Pointer, fields[0].Message)
	}
	return &Error{Code: CodeInvalid, Message: msg, Fields: fields}
}

// ErrorCodeOf returns the code of the domain error in err's chain, or CodeInternal.
func ErrorCodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
