package httpapi

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// changePermission is the permission each kind of change needs beyond customers:read.
var changePermission = map[crm.ChangeType]crm.Permission{
	crm.ChangeTransaction:       crm.PermTransactionsRead,
	crm.ChangeSegmentMembership: crm.PermSegmentsRead,
}

// readableChangeTypes lists the kinds of change p may read, or nil when it may read all.
func readableChangeTypes(p *crm.Principal) []crm.ChangeType {
	all := []crm.ChangeType{crm.ChangeCustomer, crm.ChangeTransaction, crm.ChangeSegmentMembership}
	types := readable(p, all)
	if len(types) == len(all) {
		return nil
	}
	return types
}

// auditChangeTypes lists the kinds of change of a customer's audit trail that p may read: the
// customer's own changes and its transactions' (segment memberships follow from scores, not
// from anyone's edit).
func auditChangeTypes(p *crm.Principal) []crm.ChangeType {
	return readable(p, []crm.ChangeType{crm.ChangeCustomer, crm.ChangeTransaction})
}

// readable keeps the kinds of change p may read.
func readable(p *crm.Principal, all []crm.ChangeType) []crm.ChangeType {
	var types []crm.ChangeType
	for _, typ := range all {
		if perm, ok := changePermission[typ]; !ok || p.Allows(perm) {
			types = append(types, typ)
		}
	}
	return types
}

// ListChanges returns one page of the change feed. Without a type filter, the kinds of record
// the caller may not read are left out; asking for one of them is forbidden.
func (s *Server) ListChanges(ctx context.Context, req api.ListChangesRequestObject) (api.ListChangesResponseObject, error) {
	p := principalOf(ctx)
	var types []crm.ChangeType
	if req.Params.Type != nil {
		for _, t := range *req.Params.Type {
			typ := crm.ChangeType(t)
			if perm, ok := changePermission[typ]; ok && !p.Allows(perm) {
				return nil, crm.Errorf(crm.CodeForbidden, "This API key lacks the %s permission that changes of type %s need.", perm, typ)
			}
			types = append(types, typ)
		}
	} else {
		types = readableChangeTypes(p)
	}
	page, err := s.Changes.List(ctx, scopeOf(ctx), crm.ChangeFilter{
		Types: types,
		Page:  crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)},
	})
	if err != nil {
		return nil, err
	}
	out := api.ListChanges200JSONResponse{Data: make([]api.Change, len(page.Changes)), HasMore: page.HasMore, NextCursor: page.NextCursor}
	for i := range page.Changes {
		out.Data[i] = changeToAPI(&page.Changes[i])
	}
	return out, nil
}

// ListCustomerAudit returns one page of a customer's audit trail, without the kinds of record
// the caller may not read.
func (s *Server) ListCustomerAudit(ctx context.Context, req api.ListCustomerAuditRequestObject) (api.ListCustomerAuditResponseObject, error) {
	page, err := s.Changes.Audit(ctx, scopeOf(ctx), req.CustomerId, auditChangeTypes(principalOf(ctx)), crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)})
	if err != nil {
		return nil, err
	}
	out := api.ListCustomerAudit200JSONResponse{Data: make([]api.AuditEntry, len(page.Changes)), HasMore: page.NextCursor != ""}
	for i, c := range page.Changes {
		out.Data[i] = api.AuditEntry{
			Id:            c.ID,
			Type:          api.ChangeType(c.Type),
			Operation:     api.ChangeOperation(c.Operation),
			EntityId:      c.EntityID,
			ChangedAt:     c.ChangedAt,
			Actor:         actorToAPI(c.Actor),
			ChangedFields: c.ChangedFields,
		}
	}
	out.NextCursor = nullableString(page.NextCursor)
	return out, nil
}

func changeToAPI(c *crm.Change) api.Change {
	out := api.Change{
		Id:            c.ID,
		Type:          api.ChangeType(c.Type),
		Operation:     api.ChangeOperation(c.Operation),
		EntityId:      c.EntityID,
		CustomerId:    c.CustomerID,
		ChangedAt:     c.ChangedAt,
		Actor:         actorToAPI(c.Actor),
		ChangedFields: c.ChangedFields,
	}
	switch {
	case c.Tombstone != nil:
		refs := make([]api.ExternalRef, len(c.Tombstone.ExternalRefs))
		for i, r := range c.Tombstone.ExternalRefs {
			refs[i] = api.ExternalRef{Source: r.Source, ExternalId: r.ExternalID}
		}
		out.Tombstone = nullable.NewNullableWithValue(api.Tombstone{
			Id: c.Tombstone.ID, CustomerId: c.Tombstone.CustomerID, ParentId: nullableOf(c.Tombstone.ParentID), ExternalRefs: refs,
		})
	case c.Customer != nil:
		out.Customer = nullable.NewNullableWithValue(customerToAPI(c.Customer))
	case c.Transaction != nil:
		out.Transaction = nullable.NewNullableWithValue(transactionToAPI(c.Transaction))
	}
	if c.Membership != nil {
		m := c.Membership
		out.SegmentMembership = nullable.NewNullableWithValue(api.MembershipChange{
			CustomerId: m.CustomerID, Cause: api.MembershipChangeCause(m.Cause), ChangedAt: m.ChangedAt,
			Entered: segmentRefsToAPI(m.Entered), Left: segmentRefsToAPI(m.Left),
		})
	}
	return out
}

func actorToAPI(a *crm.Actor) nullable.Nullable[api.Actor] {
	if a == nil {
		return nullable.NewNullNullable[api.Actor]()
	}
	return nullable.NewNullableWithValue(api.Actor{KeyId: a.KeyID, Name: a.Name})
}
