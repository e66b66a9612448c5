package operator

import (
	"context"
	"errors"
	"fmt"

	"github.com/phonex/phonex/internal/store"
)

// checkGroupName allows 1-64 characters of letters, digits, '-', '_' and
// '.', starting with a letter or digit: group names appear in commands,
// URLs of the panel and the audit log unquoted.
func checkGroupName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w %q: 1 to 64 characters", ErrBadGroupName, name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf("%w %q: letters, digits, '-', '_' and '.', starting with a letter or digit", ErrBadGroupName, name)
		}
	}
	return nil
}

// AddGroup creates an empty group.
func (s *Service) AddGroup(ctx context.Context, actor Actor, name string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := checkGroupName(name); err != nil {
		return err
	}
	if err := s.st.CreateGroup(ctx, name, s.now()); err != nil {
		return fmt.Errorf("add group: %w", err)
	}
	return s.record(ctx, actor, "group.add", name, "")
}

// RemoveGroup removes a group with its memberships and policy overrides;
// contacts provisioned from it stay on the members' lists.
func (s *Service) RemoveGroup(ctx context.Context, actor Actor, name string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := checkGroupName(name); err != nil {
		return err
	}
	if err := s.st.DeleteGroup(ctx, name); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no group %s: %w", name, err)
	} else if err != nil {
		return err
	}
	return s.record(ctx, actor, "group.remove", name, "")
}

// GroupInfo is one line of 'phonexd group list'.
type GroupInfo struct {
	Group   string `json:"group"`
	Members int    `json:"members"`
}

// Groups lists every group with its member count.
func (s *Service) Groups(ctx context.Context) ([]GroupInfo, error) {
	gs, err := s.st.Groups(ctx)
	if err != nil {
		return nil, err
	}
	out := []GroupInfo{}
	for _, g := range gs {
		out = append(out, GroupInfo{Group: g.Name, Members: g.Members})
	}
	return out, nil
}

// Members lists a group's accounts.
func (s *Service) Members(ctx context.Context, group string) ([]string, error) {
	if err := checkGroupName(group); err != nil {
		return nil, err
	}
	return s.st.GroupMembers(ctx, group)
}

// AddMember puts an account of this cluster into a group.
func (s *Service) AddMember(ctx context.Context, actor Actor, group, account string) error {
	return s.member(ctx, actor, group, account, true)
}

// RemoveMember takes an account out of a group.
func (s *Service) RemoveMember(ctx context.Context, actor Actor, group, account string) error {
	return s.member(ctx, actor, group, account, false)
}

func (s *Service) member(ctx context.Context, actor Actor, group, account string, add bool) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := checkGroupName(group); err != nil {
		return err
	}
	a, err := s.account(account)
	if err != nil {
		return err
	}
	action := "group.add-member"
	if add {
		err = s.st.AddGroupMember(ctx, group, a.String())
	} else {
		action = "group.remove-member"
		err = s.st.RemoveGroupMember(ctx, group, a.String())
	}
	if err != nil {
		return err
	}
	return s.record(ctx, actor, action, group, a.String())
}

// Provisioned is the result of provisioning a group: how many contact
// entries were added now, and how many were left alone because the account
// had them already or had removed them after an earlier provisioning.
type Provisioned struct {
	Group   string `json:"group"`
	Members int    `json:"members"`
	Added   int    `json:"added"`
	Kept    int    `json:"kept"`
}

// Provision adds every member of a group to every other member's contact
// list (both ways, so members can message each other at once). Each account
// sees the added contacts like its own and may remove them; a contact once
// provisioned is never provisioned again, so a removal stands. Members
// without a device yet get their entries too.
func (s *Service) Provision(ctx context.Context, actor Actor, group string) (Provisioned, error) {
	if err := checkActor(actor); err != nil {
		return Provisioned{}, err
	}
	members, err := s.Members(ctx, group)
	if err != nil {
		return Provisioned{}, err
	}
	res := Provisioned{Group: group, Members: len(members)}
	now := s.now()
	for _, m := range members {
		rec, err := s.st.Account(ctx, m)
		if err != nil {
			return res, fmt.Errorf("%s: %w", m, err)
		}
		for _, c := range members {
			if c == m {
				continue
			}
			added, err := s.st.ProvisionContact(ctx, rec.ID, c, now)
			if err != nil {
				return res, fmt.Errorf("provision %s: %w", m, err)
			}
			if added {
				res.Added++
			} else {
				res.Kept++
			}
		}
	}
	// The counts only: which contacts went where is not the log's.
	return res, s.record(ctx, actor, "group.provision", group, fmt.Sprintf("members=%d added=%d kept=%d", res.Members, res.Added, res.Kept))
}
