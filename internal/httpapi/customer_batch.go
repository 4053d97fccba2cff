package httpapi

import (
	"context"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// UpsertCustomerBatch creates or updates up to 1,000 customers.
func (s *Server) UpsertCustomerBatch(ctx context.Context, req api.UpsertCustomerBatchRequestObject) (api.UpsertCustomerBatchResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	items := make([]crm.CustomerUpsert, len(req.Body.Items))
	for i := range req.Body.Items {
		items[i] = customerUpsertFromAPI(&req.Body.Items[i])
	}
	opts := crm.UpsertOptions{AllOrNone: deref(req.Body.AllOrNone), DryRun: deref(req.Body.DryRun)}
	results, err := s.CustomerBatches.Upsert(ctx, scopeOf(ctx), items, opts)
	if err != nil {
		return nil, err
	}
	out := api.UpsertCustomerBatch200JSONResponse{DryRun: opts.DryRun, Results: make([]api.CustomerBatchItemResult, len(results))}
	for i, r := range results {
		item := api.CustomerBatchItemResult{Index: i, Status: api.CustomerBatchItemResultStatus(r.Status)}
		switch r.Status {
		case crm.UpsertFailed:
			out.Failed++
			item.Error = batchItemError(r.Err)
		case crm.UpsertCreated:
			out.Created++
		case crm.UpsertUpdated:
			out.Updated++
		case crm.UpsertUnchanged:
			out.Unchanged++
		}
		if r.Status != crm.UpsertFailed && r.Version > 0 {
			id, version := r.ID, r.Version
			item.Id, item.Version = &id, &version
		}
		out.Results[i] = item
	}
	return out, nil
}

func customerUpsertFromAPI(b *api.CustomerBatchItem) crm.CustomerUpsert {
	it := crm.CustomerUpsert{
		ID:      b.Id,
		IfMatch: deref(b.IfMatch),
		Patch: customerPatchFromAPI(&api.CustomerPatch{
			Kind: b.Kind, Role: b.Role, ParentId: b.ParentId, Name: b.Name, Email: b.Email,
			Phone: b.Phone, Country: b.Country, Industry: b.Industry, Tags: b.Tags,
			Attributes: b.Attributes, Owner: b.Owner, AcquiredAt: b.AcquiredAt,
			AcquisitionChannel: b.AcquisitionChannel, AcquisitionCost: b.AcquisitionCost,
			ReferredBy: b.ReferredBy, ExternalRefs: b.ExternalRefs,
		}),
	}
	if b.ExternalRef != nil {
		it.Ref = &crm.ExternalRef{Source: b.ExternalRef.Source, ExternalID: b.ExternalRef.ExternalId}
	}
	if b.ParentRef != nil {
		it.ParentRef = &crm.ExternalRef{Source: b.ParentRef.Source, ExternalID: b.ParentRef.ExternalId}
	}
	return it
}
