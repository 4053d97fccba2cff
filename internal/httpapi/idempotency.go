package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/centric-crm/centric/internal/crm"
)

// idempotencyHeader names the header that makes a POST safe to retry.
const idempotencyHeader = "Idempotency-Key"

// replayedHeader marks a response replayed from an earlier request with the same key.
const replayedHeader = "Idempotent-Replayed"

// replayedHeaders are the response headers stored and replayed with the body.
var replayedHeaders = []string{echo.HeaderContentType, echo.HeaderLocation, "ETag"}

// idempotency makes POSTs with an Idempotency-Key safe to retry. The first request with a key
// runs, and its response (a success or a client error) is stored for crm.IdempotencyTTL;
// every later request with the same key and the same method, path and body gets that
// response again. The same key with another request is a 422, and a request arriving while
// the first is still running is a 409. A server error is not stored, so a retry runs again.
// Keys belong to the API key that sent them. It runs after authentication and contract
// validation, so requests the contract rejects claim no key.
func idempotency(store crm.IdempotencyStore, now func() time.Time, logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			key := req.Header.Get(idempotencyHeader)
			p := principalOf(req.Context())
			if req.Method != http.MethodPost || key == "" || p == nil {
				return next(c)
			}
			if len(key) > crm.MaxIdempotencyKeyLength {
				return &requestError{status: http.StatusBadRequest, detail: fmt.Sprintf("The Idempotency-Key header is longer than %d characters.", crm.MaxIdempotencyKeyLength),
					fields: []crm.FieldError{{Pointer: "header:" + idempotencyHeader, Message: fmt.Sprintf("must be at most %d characters", crm.MaxIdempotencyKeyLength)}}}
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return fmt.Errorf("read request body: %w", err)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			hash := sha256.New()
			fmt.Fprintf(hash, "%s\n%s\n", req.Method, req.URL.RequestURI())
			hash.Write(body)
			digest := hash.Sum(nil)

			earlier, claimed, err := store.ClaimIdempotencyKey(req.Context(), p.KeyID, key, digest, now())
			if err != nil {
				return err
			}
			if !claimed {
				return replay(c, key, digest, earlier)
			}
			return record(c, next, store, p, key, logger)
		}
	}
}

// replay answers a request whose key is held by an earlier one.
func replay(c echo.Context, key string, digest []byte, earlier *crm.IdempotencyRecord) error {
	if !bytes.Equal(earlier.RequestHash, digest) {
		return crm.Errorf(crm.CodeIdempotencyKeyReused, "The Idempotency-Key %q was used for another request (method, path or body differ); use a new key for a new request.", key)
	}
	if earlier.Response == nil {
		return crm.Errorf(crm.CodeIdempotencyKeyInUse, "A request with the Idempotency-Key %q is still being processed; retry once it has finished to get its response.", key)
	}
	res := earlier.Response
	for _, name := range replayedHeaders {
		if v := res.Header.Get(name); v != "" {
			c.Response().Header().Set(name, v)
		}
	}
	c.Response().Header().Set(replayedHeader, "true")
	c.Response().WriteHeader(res.Status)
	_, err := c.Response().Write(res.Body)
	return err
}

// record runs the request with its response captured, and stores the response, or releases
// the key after a server error.
func record(c echo.Context, next echo.HandlerFunc, store crm.IdempotencyStore, p *crm.Principal, key string, logger *slog.Logger) error {
	capture := &capturingWriter{ResponseWriter: c.Response().Writer}
	c.Response().Writer = capture
	// Settle with a context of its own: the client may have gone, but the key must settle.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 10*time.Second)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			// A panic is a server error: free the key for a retry, then let Recover answer.
			if err := store.ReleaseIdempotencyKey(ctx, p.KeyID, key); err != nil {
				logger.ErrorContext(ctx, "release idempotency key", "error", err)
			}
			panic(r)
		}
	}()
	if err := next(c); err != nil {
		c.Error(err)
	}
	status := c.Response().Status
	var err error
	if status >= 500 {
		err = store.ReleaseIdempotencyKey(ctx, p.KeyID, key)
	} else {
		header := http.Header{}
		for _, name := range replayedHeaders {
			if v := c.Response().Header().Get(name); v != "" {
				header.Set(name, v)
			}
		}
		err = store.SaveIdempotentResponse(ctx, p.KeyID, key, crm.StoredResponse{Status: status, Header: header, Body: capture.body.Bytes()})
	}
	if err != nil {
		// The response has been sent; the key stays claimed until its lease runs out.
		logger.ErrorContext(ctx, "settle idempotency key", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "error", err)
	}
	return nil
}

// capturingWriter passes a response through and keeps a copy of its body.
type capturingWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}
