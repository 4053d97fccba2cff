// Package api holds the server interface, models and embedded contract generated from
// openapi.yaml. Never edit api.gen.go: change openapi.yaml and run `go generate ./...`.
package api

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
