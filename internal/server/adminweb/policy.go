package adminweb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/phonex/phonex/internal/server/operator"
)

// policyForm is a change of one policy key for an account or a group; an
// empty value removes the override.
type policyForm struct {
	Account, Group string
	Key, Value     string
	Next           string
}

func parsePolicy(f url.Values, domain string) (policyForm, error) {
	pf := policyForm{Key: strings.TrimSpace(f.Get("key")), Value: strings.TrimSpace(f.Get("value"))}
	name := strings.ToLower(strings.TrimSpace(f.Get("name")))
	if name == "" || len(name) > 255 {
		return pf, errors.New("an account or group name is needed")
	}
	switch f.Get("scope") {
	case "account":
		if !strings.Contains(name, "@") {
			name += "@" + domain
		}
		pf.Account = name
		pf.Next = "/accounts/" + url.PathEscape(name)
	case "group":
		pf.Group = name
		pf.Next = "/groups/" + url.PathEscape(name)
	default:
		return pf, errors.New("scope must be account or group")
	}
	known := false
	for _, k := range operator.Keys {
		known = known || k.Name == pf.Key
	}
	if !known {
		return pf, fmt.Errorf("unknown policy key %q", pf.Key)
	}
	if len(pf.Value) > 64 {
		return pf, errors.New("policy value too long")
	}
	if f.Get("op") == "reset" {
		pf.Value = ""
	}
	return pf, nil
}

type policyLine struct {
	operator.Setting
	Help string
}

// policyLines is ShowPolicy with each key's help.
func (p *Panel) policyLines(ctx context.Context, account, group string) ([]policyLine, error) {
	ss, err := p.adm.Operator().ShowPolicy(ctx, account, group)
	if err != nil {
		return nil, err
	}
	help := map[string]string{}
	for _, k := range operator.Keys {
		help[k.Name] = k.Help
	}
	out := make([]policyLine, 0, len(ss))
	for _, s := range ss {
		out = append(out, policyLine{Setting: s, Help: help[s.Key]})
	}
	return out, nil
}

type policiesData struct {
	Defaults []policyLine
	Keys     []operator.Key
	Groups   []operator.GroupInfo
}

// policiesPage shows the node's defaults (phonexd.conf) and the form that
// sets a key for an account or a group.
func (p *Panel) policiesPage(w http.ResponseWriter, r *http.Request) {
	def, err := p.policyLines(r.Context(), "", "")
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	gs, err := p.adm.Operator().Groups(r.Context())
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	p.render(w, r, http.StatusOK, "policies.html", view{Title: "Policies and quotas", Data: policiesData{Defaults: def, Keys: operator.Keys, Groups: gs}})
}

// setPolicy changes one key through the operator service, which records
// it; running nodes apply it within their poll interval.
func (p *Panel) setPolicy(w http.ResponseWriter, r *http.Request) {
	pf, err := parsePolicy(r.PostForm, p.adm.Config().Domain)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if err := p.adm.Operator().SetPolicy(r.Context(), operator.Actor(sessionOf(r).Admin), pf.Account, pf.Group, pf.Key, pf.Value); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, pf.Next+"?done=policy", http.StatusSeeOther)
}

type groupsData struct {
	Groups []operator.GroupInfo
}

func (p *Panel) groupsPage(w http.ResponseWriter, r *http.Request) {
	gs, err := p.adm.Operator().Groups(r.Context())
	if err != nil {
		p.fail(w, r, fmt.Errorf("%w: %v", errInternal, err))
		return
	}
	p.render(w, r, http.StatusOK, "groups.html", view{Title: "Groups", Data: groupsData{Groups: gs}})
}

func parseGroupName(f url.Values) (string, error) {
	n := strings.ToLower(strings.TrimSpace(f.Get("group")))
	if n == "" || len(n) > 64 {
		return "", errors.New("a group name of 1-64 characters is needed")
	}
	return n, nil
}

func (p *Panel) createGroup(w http.ResponseWriter, r *http.Request) {
	g, err := parseGroupName(r.PostForm)
	if err == nil {
		err = p.adm.Operator().AddGroup(r.Context(), operator.Actor(sessionOf(r).Admin), g)
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/groups/"+url.PathEscape(g)+"?done=group-add", http.StatusSeeOther)
}

type groupData struct {
	Group       string
	Members     []string
	Policy      []policyLine
	Keys        []operator.Key
	Provisioned *operator.Provisioned
}

func (p *Panel) groupData(ctx context.Context, g string) (groupData, error) {
	ms, err := p.adm.Operator().Members(ctx, g)
	if err != nil {
		return groupData{}, err
	}
	pol, err := p.policyLines(ctx, "", g)
	if err != nil {
		return groupData{}, err
	}
	return groupData{Group: g, Members: ms, Policy: pol, Keys: operator.Keys}, nil
}

func (p *Panel) groupPage(w http.ResponseWriter, r *http.Request) {
	d, err := p.groupData(r.Context(), r.PathValue("group"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "group.html", view{Title: "Group " + d.Group, Data: d})
}

func (p *Panel) groupAction(w http.ResponseWriter, r *http.Request) {
	op, actor := p.adm.Operator(), operator.Actor(sessionOf(r).Admin)
	g := r.PathValue("group")
	back := "/groups/" + url.PathEscape(g)
	var err error
	switch action := r.PathValue("action"); action {
	case "add-member", "remove-member":
		acct := strings.ToLower(strings.TrimSpace(r.PostForm.Get("account")))
		if acct == "" || len(acct) > 255 {
			err = errors.New("an account is needed")
			break
		}
		if !strings.Contains(acct, "@") {
			acct += "@" + p.adm.Config().Domain
		}
		if action == "add-member" {
			err = op.AddMember(r.Context(), actor, g, acct)
		} else {
			err = op.RemoveMember(r.Context(), actor, g, acct)
		}
		if err == nil {
			http.Redirect(w, r, back+"?done="+action, http.StatusSeeOther)
			return
		}
	case "provision":
		var res operator.Provisioned
		if res, err = op.Provision(r.Context(), actor, g); err == nil {
			d, derr := p.groupData(r.Context(), g)
			if derr != nil {
				err = derr
				break
			}
			d.Provisioned = &res
			p.render(w, r, http.StatusOK, "group.html", view{Title: "Group " + g, Data: d})
			return
		}
	case "remove":
		// Removing a group drops its memberships and its policies: a
		// destructive change, after a fresh sign-in.
		if r.PostForm.Get("confirm") != g {
			err = fmt.Errorf("type the group name %s to confirm its removal", g)
			break
		}
		if !p.fresh(w, r, back) {
			return
		}
		if err = op.RemoveGroup(r.Context(), actor, g); err == nil {
			http.Redirect(w, r, "/groups?done=group-remove", http.StatusSeeOther)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	p.fail(w, r, err)
}
