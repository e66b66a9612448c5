package operator

import (
	"context"
	"time"
)

// AuditLine is one entry of 'phonexd audit'.
type AuditLine struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

// Audit returns the operator actions at or after since, oldest first, the
// newest limit of them when limit > 0.
func (s *Service) Audit(ctx context.Context, since time.Time, limit int) ([]AuditLine, error) {
	es, err := s.st.Audit(ctx, since, limit)
	if err != nil {
		return nil, err
	}
	out := make([]AuditLine, 0, len(es))
	for _, e := range es {
		out = append(out, AuditLine{Time: e.Time.UTC(), Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	return out, nil
}

// Record appends an action done outside the service (a sign-in to the
// panel, a standard phone added by the node) to the audit log.
func (s *Service) Record(ctx context.Context, actor Actor, action, target, detail string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	return s.record(ctx, actor, action, target, detail)
}
