package analytics

import (
	"context"

	"github.com/google/uuid"
)

// MembershipUpdater keeps whatever is derived from the scores, such as segment memberships,
// current. It handles its own failures: derived data never fails the scoring that changed it.
type MembershipUpdater interface {
	// ScoresChanged is called after the given customers were rescored live.
	ScoresChanged(ctx context.Context, customerIDs []uuid.UUID)
	// ScoresRefreshed is called after a model run rescored everyone, before the run is
	// reported as succeeded.
	ScoresRefreshed(ctx context.Context)
}

// SetMembershipUpdater makes the service tell u about every change of scores.
func (s *Service) SetMembershipUpdater(u MembershipUpdater) { s.members = u }
