package httpapi

import (
	"context"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// CreateTransaction records one transaction, or returns the one already recorded.
func (s *Server) CreateTransaction(ctx context.Context, req api.CreateTransactionRequestObject) (api.CreateTransactionResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	t, created, err := s.Transactions.Create(ctx, scopeOf(ctx), transactionFromAPI(req.Body))
	if err != nil {
		return nil, err
	}
	if !created {
		return api.CreateTransaction200JSONResponse(transactionToAPI(t)), nil
	}
	location := "/v1/transactions/" + t.ID.String()
	return api.CreateTransaction201JSONResponse{Body: transactionToAPI(t), Headers: api.CreateTransaction201ResponseHeaders{Location: &location}}, nil
}

// CreateTransactionBatch records up to 10,000 transactions.
func (s *Server) CreateTransactionBatch(ctx context.Context, req api.CreateTransactionBatchRequestObject) (api.CreateTransactionBatchResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	items := make([]crm.Transaction, len(req.Body.Items))
	for i := range req.Body.Items {
		items[i] = transactionFromAPI(&req.Body.Items[i])
	}
	opts := crm.RecordOptions{AllOrNone: deref(req.Body.AllOrNone), CreateCustomers: deref(req.Body.CreateCustomers)}
	results, err := s.Transactions.Record(ctx, scopeOf(ctx), items, opts)
	if err != nil {
		return nil, err
	}
	out := api.CreateTransactionBatch200JSONResponse{Results: make([]api.TransactionBatchItemResult, len(results))}
	for i, r := range results {
		item := api.TransactionBatchItemResult{Index: i, Status: api.TransactionBatchItemResultStatus(r.Status)}
		switch r.Status {
		case crm.RecordFailed:
			out.Failed++
			item.Error = batchItemError(r.Err)
		default:
			if r.Status == crm.RecordCreated {
				out.Created++
			} else {
				out.Existing++
			}
			id, customerID := r.ID, r.CustomerID
			item.Id, item.CustomerId = &id, &customerID
		}
		out.Results[i] = item
	}
	return out, nil
}

// GetTransaction returns one transaction.
func (s *Server) GetTransaction(ctx context.Context, req api.GetTransactionRequestObject) (api.GetTransactionResponseObject, error) {
	t, err := s.Transactions.Get(ctx, scopeOf(ctx), req.TransactionId)
	if err != nil {
		return nil, err
	}
	return api.GetTransaction200JSONResponse(transactionToAPI(t)), nil
}

// ListTransactions returns one page of transactions across customers.
func (s *Server) ListTransactions(ctx context.Context, req api.ListTransactionsRequestObject) (api.ListTransactionsResponseObject, error) {
	p := req.Params
	f := transactionFilter(p.Limit, p.Cursor, (*string)(p.Sort), p.Type, p.OccurredFrom, p.OccurredTo, p.Source)
	f.CustomerID = p.CustomerId
	page, err := s.Transactions.List(ctx, scopeOf(ctx), f)
	if err != nil {
		return nil, err
	}
	return api.ListTransactions200JSONResponse(transactionPageToAPI(page)), nil
}

// ListCustomerTransactions returns one page of a customer's transactions.
func (s *Server) ListCustomerTransactions(ctx context.Context, req api.ListCustomerTransactionsRequestObject) (api.ListCustomerTransactionsResponseObject, error) {
	p := req.Params
	f := transactionFilter(p.Limit, p.Cursor, (*string)(p.Sort), p.Type, p.OccurredFrom, p.OccurredTo, p.Source)
	page, err := s.Transactions.ListForCustomer(ctx, scopeOf(ctx), req.CustomerId, f)
	if err != nil {
		return nil, err
	}
	return api.ListCustomerTransactions200JSONResponse(transactionPageToAPI(page)), nil
}

func transactionFilter(limit *int, cursor, sort *string, typ *api.TransactionType, from, to *api.OccurredFrom, source *string) crm.TransactionFilter {
	f := crm.TransactionFilter{
		OccurredFrom: from,
		OccurredTo:   to,
		Source:       deref(source),
		Sort:         crm.TransactionSort(deref(sort)),
		Page:         crm.PageRequest{Limit: deref(limit), Cursor: deref(cursor)},
	}
	if typ != nil {
		f.Type = crm.TransactionType(*typ)
	}
	return f
}

func transactionPageToAPI(page crm.TransactionPage) api.TransactionPage {
	out := api.TransactionPage{Data: make([]api.Transaction, len(page.Transactions)), HasMore: page.NextCursor != ""}
	for i := range page.Transactions {
		out.Data[i] = transactionToAPI(&page.Transactions[i])
	}
	out.NextCursor = nullableString(page.NextCursor)
	return out
}

func transactionFromAPI(b *api.TransactionCreate) crm.Transaction {
	t := crm.Transaction{
		Type:       crm.TransactionType(b.Type),
		OccurredAt: b.OccurredAt,
		Amount:     b.Amount,
		Currency:   b.Currency,
		Product:    b.Product,
		Category:   b.Category,
		Quantity:   b.Quantity,
		Margin:     b.Margin,
		Channel:    b.Channel,
		DealerID:   b.DealerId,
		Source:     b.Source,
		ExternalID: b.ExternalId,
		Metadata:   deref(b.Metadata),
	}
	if b.CustomerId != nil {
		t.CustomerID = *b.CustomerId
	}
	if b.CustomerRef != nil {
		t.CustomerRef = &crm.ExternalRef{Source: b.CustomerRef.Source, ExternalID: b.CustomerRef.ExternalId}
	}
	return t
}

func transactionToAPI(t *crm.Transaction) api.Transaction {
	return api.Transaction{
		Id:         t.ID,
		CustomerId: t.CustomerID,
		Type:       api.TransactionType(t.Type),
		OccurredAt: t.OccurredAt,
		Amount:     t.Amount,
		Currency:   t.Currency,
		Product:    nullableOf(t.Product),
		Category:   nullableOf(t.Category),
		Quantity:   nullableOf(t.Quantity),
		Margin:     nullableOf(t.Margin),
		Channel:    nullableOf(t.Channel),
		DealerId:   nullableOf(t.DealerID),
		Source:     nullableOf(t.Source),
		ExternalId: nullableOf(t.ExternalID),
		Metadata:   t.Metadata,
		CreatedAt:  t.CreatedAt,
	}
}
