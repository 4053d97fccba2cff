package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/centric-crm/centric/internal/app"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a running API on its own database, with an admin key.
type env struct {
	t     testing.TB
	app   *app.App
	url   string
	admin string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with the configuration changed by configure first.
func newEnvWith(t testing.TB, configure func(*config.Config)) *env {
	t.Helper()
	ctx := context.Background()
	cfg := config.Config{DatabaseURL: pgtest.DSN(t), MaxDBConns: 8}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	workCtx, stopWork := context.WithCancel(ctx)
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		a.Analytics.Work(workCtx)
	}()
	t.Cleanup(func() {
		stopWork()
		<-worked
	})
	h, err := a.Handler()
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, token, err := a.Keys.Create(ctx, "test admin", []crm.Permission{crm.PermAdmin})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return &env{t: t, app: a, url: srv.URL, admin: token}
}

// key issues an API key with the given permissions.
func (e *env) key(perms ...crm.Permission) string {
	e.t.Helper()
	_, token, err := e.app.Keys.Create(context.Background(), "test", perms)
	if err != nil {
		e.t.Fatalf("create key: %v", err)
	}
	return token
}

// response is a decoded HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return v
}

// request is one HTTP call; Body is JSON-encoded unless it is a string or []byte.
type request struct {
	Method  string
	Path    string
	Body    any
	Key     string
	Headers map[string]string
}

func (e *env) do(req request) response {
	e.t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = bytes.NewBufferString(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
		body = bytes.NewReader(raw)
	}
	httpReq, err := http.NewRequest(req.Method, e.url+req.Path, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if body != nil {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	key := req.Key
	if key == "" {
		key = e.admin
	}
	if key != "-" {
		httpReq.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range req.Headers {
		httpReq.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// mustDo performs req and fails the test unless the status is want.
func (e *env) mustDo(req request, want int) response {
	e.t.Helper()
	res := e.do(req)
	if res.Status != want {
		e.t.Fatalf("%s %s = %d, want %d; body: %s", req.Method, req.Path, res.Status, want, res.Body)
	}
	return res
}

// problem asserts res is a problem document with the given status and code, and returns it.
func problem(t *testing.T, res response, status int, code string) map[string]any {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body: %s", ct, res.Body)
	}
	p := res.json(t)
	if p["code"] != code {
		t.Fatalf("code = %v, want %s; body: %s", p["code"], code, res.Body)
	}
	if p["status"] != float64(status) || p["type"] != "urn:centric:problem:"+replaceUnderscore(code) || p["title"] == "" || p["detail"] == "" {
		t.Fatalf("incomplete problem: %s", res.Body)
	}
	if p["request_id"] == "" || p["request_id"] != res.Header.Get("X-Request-Id") {
		t.Fatalf("request_id = %v, header %q", p["request_id"], res.Header.Get("X-Request-Id"))
	}
	return p
}

// pointers returns the pointers of a problem's field errors.
func pointers(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["pointer"].(string))
	}
	return out
}

func replaceUnderscore(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("_"), []byte("-")))
}
