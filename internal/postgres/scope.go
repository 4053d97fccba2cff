package postgres

import (
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
)

// confineCustomers shows customers as a caller confined to scope sees them: the hierarchy
// from the scope's root down, and no referrer outside the scope.
func confineCustomers(tx *gorm.DB, scope crm.Scope, customers ...*crm.Customer) error {
	if scope.Root == nil {
		return nil
	}
	referrers := make([]**uuid.UUID, len(customers))
	for i, c := range customers {
		scope.Confine(c)
		referrers[i] = &c.ReferredBy
	}
	return hideForeign(tx, scope, referrers)
}

// hideForeign clears every reference that names a customer outside the scope, such as the
// referrer of a customer or the dealer of a transaction that an unconfined key set across
// subtrees, so that a confined caller never sees the id of a record it cannot read. Customers
// are looked up in one query.
func hideForeign(tx *gorm.DB, scope crm.Scope, refs []**uuid.UUID) error {
	if scope.Root == nil {
		return nil
	}
	var ids []uuid.UUID
	for _, r := range refs {
		if *r != nil && **r != *scope.Root {
			ids = append(ids, **r)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var visible []uuid.UUID
	err := tx.Model(&customerRow{}).Where("id IN ? AND ancestors @> ARRAY[?]::uuid[]", ids, *scope.Root).Pluck("id", &visible).Error
	if err != nil {
		return fmt.Errorf("check references within scope: %w", err)
	}
	inScope := make(map[uuid.UUID]bool, len(visible))
	for _, id := range visible {
		inScope[id] = true
	}
	for _, r := range refs {
		if *r != nil && **r != *scope.Root && !inScope[**r] {
			*r = nil
		}
	}
	return nil
}
