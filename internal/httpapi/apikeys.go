package httpapi

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// CreateApiKey issues a key; its secret is in this response only.
func (s *Server) CreateApiKey(ctx context.Context, req api.CreateApiKeyRequestObject) (api.CreateApiKeyResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	in := crm.NewAPIKey{Name: req.Body.Name, RootCustomerID: req.Body.RootCustomerId}
	if l := req.Body.RateLimit; l != nil {
		in.RateLimit = &crm.RateLimit{PerSecond: l.PerSecond, Burst: l.Burst}
	}
	for _, p := range req.Body.Permissions {
		in.Permissions = append(in.Permissions, crm.Permission(p))
	}
	k, secret, err := s.Keys.Issue(ctx, principalOf(ctx), in)
	if err != nil {
		return nil, err
	}
	out := apiKeyToAPI(k)
	location := "/v1/api-keys/" + k.ID.String()
	return api.CreateApiKey201JSONResponse{
		Body: api.APIKeyCreated{
			Id: out.Id, Name: out.Name, Prefix: out.Prefix, Permissions: out.Permissions,
			RootCustomerId: out.RootCustomerId, RateLimit: out.RateLimit, CreatedAt: out.CreatedAt, RevokedAt: out.RevokedAt, Secret: secret,
		},
		Headers: api.CreateApiKey201ResponseHeaders{Location: &location},
	}, nil
}

// ListApiKeys returns one page of the keys the caller may manage, newest first.
func (s *Server) ListApiKeys(ctx context.Context, req api.ListApiKeysRequestObject) (api.ListApiKeysResponseObject, error) {
	page, err := s.Keys.List(ctx, scopeOf(ctx), crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)})
	if err != nil {
		return nil, err
	}
	out := api.ListApiKeys200JSONResponse{Data: make([]api.APIKey, len(page.Keys)), HasMore: page.NextCursor != "", NextCursor: nullableString(page.NextCursor)}
	for i := range page.Keys {
		out.Data[i] = apiKeyToAPI(&page.Keys[i])
	}
	return out, nil
}

// GetApiKey returns one key without its secret.
func (s *Server) GetApiKey(ctx context.Context, req api.GetApiKeyRequestObject) (api.GetApiKeyResponseObject, error) {
	k, err := s.Keys.Get(ctx, scopeOf(ctx), req.ApiKeyId)
	if err != nil {
		return nil, err
	}
	return api.GetApiKey200JSONResponse(apiKeyToAPI(k)), nil
}

// RevokeApiKey revokes a key at once.
func (s *Server) RevokeApiKey(ctx context.Context, req api.RevokeApiKeyRequestObject) (api.RevokeApiKeyResponseObject, error) {
	k, err := s.Keys.Revoke(ctx, scopeOf(ctx), req.ApiKeyId)
	if err != nil {
		return nil, err
	}
	return api.RevokeApiKey200JSONResponse(apiKeyToAPI(k)), nil
}

func apiKeyToAPI(k *crm.APIKey) api.APIKey {
	out := api.APIKey{
		Id: k.ID, Name: k.Name, Prefix: "ck_" + k.Prefix, Permissions: make([]api.Permission, len(k.Permissions)),
		RootCustomerId: nullableOf(k.RootCustomerID), RateLimit: nullable.NewNullNullable[api.RateLimit](),
		CreatedAt: k.CreatedAt, RevokedAt: nullableOf(k.RevokedAt),
	}
	if l := k.RateLimit; l != nil {
		out.RateLimit.Set(api.RateLimit{PerSecond: l.PerSecond, Burst: l.Burst})
	}
	for i, p := range k.Permissions {
		out.Permissions[i] = api.Permission(p)
	}
	return out
}
