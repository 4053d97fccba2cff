// Package client is the Go SDK for the Centric API, generated from openapi.yaml.
//
// Create one with NewClientWithResponses and an editor that sets the API key:
//
//	c, err := client.NewClientWithResponses("http://localhost:8080",
//		client.WithRequestEditorFn(func(ctx context.Context, req *http.Request) error {
//			req.Header.Set("Authorization", "Bearer "+key)
//			return nil
//		}))
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../openapi.yaml
