package httpapi

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// CreateCustomer creates a customer.
func (s *Server) CreateCustomer(ctx context.Context, req api.CreateCustomerRequestObject) (api.CreateCustomerResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	c, err := s.Customers.Create(ctx, scopeOf(ctx), customerFromCreate(req.Body))
	if err != nil {
		return nil, err
	}
	etag, location := c.ETag(), "/v1/customers/"+c.ID.String()
	return api.CreateCustomer201JSONResponse{Body: customerToAPI(c), Headers: api.CreateCustomer201ResponseHeaders{ETag: &etag, Location: &location}}, nil
}

// GetCustomer returns a live customer.
func (s *Server) GetCustomer(ctx context.Context, req api.GetCustomerRequestObject) (api.GetCustomerResponseObject, error) {
	c, err := s.Customers.Get(ctx, scopeOf(ctx), req.CustomerId)
	if err != nil {
		return nil, err
	}
	etag := c.ETag()
	return api.GetCustomer200JSONResponse{Body: customerToAPI(c), Headers: api.GetCustomer200ResponseHeaders{ETag: &etag}}, nil
}

// UpdateCustomer applies a merge patch to a customer.
func (s *Server) UpdateCustomer(ctx context.Context, req api.UpdateCustomerRequestObject) (api.UpdateCustomerResponseObject, error) {
	body := req.ApplicationMergePatchPlusJSONBody
	if body == nil {
		body = req.JSONBody
	}
	if body == nil {
		return nil, errEmptyBody
	}
	c, err := s.Customers.Update(ctx, scopeOf(ctx), req.CustomerId, deref(req.Params.IfMatch), customerPatchFromAPI(body))
	if err != nil {
		return nil, err
	}
	etag := c.ETag()
	return api.UpdateCustomer200JSONResponse{Body: customerToAPI(c), Headers: api.UpdateCustomer200ResponseHeaders{ETag: &etag}}, nil
}

// DeleteCustomer soft-deletes a customer.
func (s *Server) DeleteCustomer(ctx context.Context, req api.DeleteCustomerRequestObject) (api.DeleteCustomerResponseObject, error) {
	if err := s.Customers.Delete(ctx, scopeOf(ctx), req.CustomerId, deref(req.Params.IfMatch)); err != nil {
		return nil, err
	}
	return api.DeleteCustomer204Response{}, nil
}

// ListCustomers returns one page of customers.
func (s *Server) ListCustomers(ctx context.Context, req api.ListCustomersRequestObject) (api.ListCustomersResponseObject, error) {
	p := req.Params
	f := crm.CustomerFilter{
		ParentID:     p.ParentId,
		DescendantOf: p.DescendantOf,
		Tags:         deref(p.Tag),
		Query:        deref(p.Q),
		UpdatedSince: p.UpdatedSince,
		MinChurnRisk: p.MinChurnRisk,
		MaxChurnRisk: p.MaxChurnRisk,
		MinCLV:       deref(p.MinClv),
		SegmentID:    p.SegmentId,
		Sort:         crm.CustomerSort(deref(p.Sort)),
		Page:         crm.PageRequest{Limit: deref(p.Limit), Cursor: deref(p.Cursor)},
	}
	if p.Kind != nil {
		f.Kind = crm.Kind(*p.Kind)
	}
	if p.Role != nil {
		f.Role = crm.Role(*p.Role)
	}
	if p.ChurnBand != nil {
		f.ChurnBand = string(*p.ChurnBand)
	}
	switch {
	case p.ExternalSource != nil && p.ExternalId != nil:
		f.ExternalRef = &crm.ExternalRef{Source: *p.ExternalSource, ExternalID: *p.ExternalId}
	case p.ExternalSource != nil:
		return nil, crm.Invalid(crm.FieldError{Pointer: "query:external_id", Message: "is required with external_source"})
	case p.ExternalId != nil:
		return nil, crm.Invalid(crm.FieldError{Pointer: "query:external_source", Message: "is required with external_id"})
	}
	page, err := s.Customers.List(ctx, scopeOf(ctx), f)
	if err != nil {
		return nil, err
	}
	out := api.ListCustomers200JSONResponse{Data: make([]api.Customer, len(page.Customers)), HasMore: page.NextCursor != ""}
	for i := range page.Customers {
		out.Data[i] = customerToAPI(&page.Customers[i])
	}
	out.NextCursor = nullableString(page.NextCursor)
	return out, nil
}

func customerFromCreate(b *api.CustomerCreate) crm.Customer {
	c := crm.Customer{
		Kind:               crm.Kind(b.Kind),
		ParentID:           b.ParentId,
		Name:               b.Name,
		Email:              b.Email,
		Phone:              b.Phone,
		Country:            b.Country,
		Industry:           b.Industry,
		Tags:               deref(b.Tags),
		Attributes:         deref(b.Attributes),
		Owner:              b.Owner,
		AcquiredAt:         b.AcquiredAt,
		AcquisitionChannel: b.AcquisitionChannel,
		ReferredBy:         b.ReferredBy,
		ExternalRefs:       refsFromAPI(deref(b.ExternalRefs)),
	}
	if b.Role != nil {
		role := crm.Role(*b.Role)
		c.Role = &role
	}
	if b.AcquisitionCost != nil {
		c.AcquisitionCost = &crm.Money{Amount: b.AcquisitionCost.Amount, Currency: b.AcquisitionCost.Currency}
	}
	return c
}

func customerPatchFromAPI(b *api.CustomerPatch) crm.CustomerPatch {
	p := crm.CustomerPatch{
		Role:               mapNullable(b.Role, func(r api.BusinessRole) crm.Role { return crm.Role(r) }),
		ParentID:           b.ParentId,
		Name:               b.Name,
		Email:              b.Email,
		Phone:              b.Phone,
		Country:            b.Country,
		Industry:           b.Industry,
		Tags:               b.Tags,
		Attributes:         b.Attributes,
		Owner:              b.Owner,
		AcquiredAt:         b.AcquiredAt,
		AcquisitionChannel: b.AcquisitionChannel,
		AcquisitionCost:    mapNullable(b.AcquisitionCost, func(m api.Money) crm.Money { return crm.Money{Amount: m.Amount, Currency: m.Currency} }),
		ReferredBy:         b.ReferredBy,
		ExternalRefs:       mapNullable(b.ExternalRefs, refsFromAPI),
	}
	if b.Kind != nil {
		kind := crm.Kind(*b.Kind)
		p.Kind = &kind
	}
	return p
}

func customerToAPI(c *crm.Customer) api.Customer {
	out := api.Customer{
		Id:                 c.ID,
		Kind:               api.CustomerKind(c.Kind),
		ParentId:           nullableOf(c.ParentID),
		Ancestors:          c.Ancestors,
		Name:               nullableOf(c.Name),
		Email:              nullableOf(c.Email),
		Phone:              nullableOf(c.Phone),
		Country:            nullableOf(c.Country),
		Industry:           nullableOf(c.Industry),
		Tags:               c.Tags,
		Attributes:         c.Attributes,
		Owner:              nullableOf(c.Owner),
		AcquiredAt:         nullableOf(c.AcquiredAt),
		AcquisitionChannel: nullableOf(c.AcquisitionChannel),
		ReferredBy:         nullableOf(c.ReferredBy),
		ExternalRefs:       make([]api.ExternalRef, len(c.ExternalRefs)),
		Version:            c.Version,
		CreatedAt:          c.CreatedAt,
		UpdatedAt:          c.UpdatedAt,
		Role:               nullable.NewNullNullable[api.BusinessRole](),
		AcquisitionCost:    nullable.NewNullNullable[api.Money](),
		Scores:             scoreSummaryToAPI(c.Scores),
		Segments:           segmentRefsToAPI(c.Segments),
	}
	if c.Role != nil {
		out.Role.Set(api.BusinessRole(*c.Role))
	}
	if c.AcquisitionCost != nil {
		out.AcquisitionCost.Set(api.Money{Amount: c.AcquisitionCost.Amount, Currency: c.AcquisitionCost.Currency})
	}
	for i, r := range c.ExternalRefs {
		out.ExternalRefs[i] = api.ExternalRef{Source: r.Source, ExternalId: r.ExternalID}
	}
	return out
}

func refsFromAPI(refs []api.ExternalRef) []crm.ExternalRef {
	out := make([]crm.ExternalRef, len(refs))
	for i, r := range refs {
		out[i] = crm.ExternalRef{Source: r.Source, ExternalID: r.ExternalId}
	}
	return out
}

// nullableOf returns null for nil and the value otherwise, never "unspecified", so a required
// nullable field is always written.
func nullableOf[T any](p *T) nullable.Nullable[T] {
	if p == nil {
		return nullable.NewNullNullable[T]()
	}
	return nullable.NewNullableWithValue(*p)
}

func nullableString(s string) nullable.Nullable[string] {
	if s == "" {
		return nullable.NewNullNullable[string]()
	}
	return nullable.NewNullableWithValue(s)
}

func mapNullable[A, B any](n nullable.Nullable[A], f func(A) B) nullable.Nullable[B] {
	switch {
	case !n.IsSpecified():
		return nil
	case n.IsNull():
		return nullable.NewNullNullable[B]()
	default:
		return nullable.NewNullableWithValue(f(n.MustGet()))
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
