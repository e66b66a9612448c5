package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server/operator"
)

const (
	groupSynopsis  = "phonexd group list|add|remove|members|add-member|remove-member|provision --data DIR [GROUP [USER@DOMAIN]] [--json]"
	policySynopsis = "phonexd policy show [--account USER@DOMAIN|--group GROUP] [--json] | phonexd policy set|reset --account USER@DOMAIN|--group GROUP KEY [VALUE] [--json]"
	auditSynopsis  = "phonexd audit --data DIR [--since 24h|2006-01-02T15:04:05Z] [--limit N] [--json]"
)

// The operator commands' usage lines, for the overview.
const operatorUsage = `  phonexd group   list|add|remove|members|add-member|remove-member|provision --data DIR [GROUP [USER]] [--json]
  phonexd policy  show|set|reset --data DIR [--account USER|--group GROUP] [KEY [VALUE]] [--json]   (quotas and limits, applied without a restart)
  phonexd audit   --data DIR [--since 24h|TIME] [--limit N] [--json]   (operator actions)
`

func cmdGroup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("group", groupSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	verb, rest, err := verb(fs, args, []string{"list", "add", "remove", "members", "add-member", "remove-member", "provision"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	want := map[string]int{"list": 0, "add": 1, "remove": 1, "members": 1, "provision": 1, "add-member": 2, "remove-member": 2}[verb]
	if len(pos) != want {
		return cli.Misuse(groupSynopsis, "group %s takes %s", verb, []string{"no argument", "a group name", "a group name and an account, GROUP USER@DOMAIN"}[want])
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	op, actor := adm.Operator(), adm.Actor()
	switch verb {
	case "list":
		gs, err := op.Groups(ctx)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, gs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tMEMBERS")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%d\n", g.Group, g.Members)
		}
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(gs), "group", "groups"))
		return nil
	case "members":
		ms, err := op.Members(ctx, pos[0])
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, map[string]any{"group": pos[0], "members": ms})
		}
		for _, m := range ms {
			fmt.Fprintln(stdout, m)
		}
		fmt.Fprintln(stdout, cli.Plural(len(ms), "member", "members"))
		return nil
	case "provision":
		res, err := op.Provision(ctx, actor, pos[0])
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, res)
		}
		fmt.Fprintf(stdout, "provisioned group %s (%s): %s added, %d left as they were (already listed, or removed by their account)\n",
			res.Group, cli.Plural(res.Members, "member", "members"), cli.Plural(res.Added, "contact entry", "contact entries"), res.Kept)
		return nil
	case "add":
		err = op.AddGroup(ctx, actor, pos[0])
	case "remove":
		err = op.RemoveGroup(ctx, actor, pos[0])
	case "add-member":
		err = op.AddMember(ctx, actor, pos[0], pos[1])
	case "remove-member":
		err = op.RemoveMember(ctx, actor, pos[0], pos[1])
	}
	if err != nil {
		return err
	}
	past := map[string]string{"add": "added", "remove": "removed", "add-member": "added", "remove-member": "removed"}[verb]
	if len(pos) == 2 {
		if *jsonOut {
			return cli.JSON(stdout, map[string]string{"group": pos[0], "account": pos[1], "result": past})
		}
		fmt.Fprintf(stdout, "%s %s %s group %s\n", past, pos[1], map[string]string{"added": "to", "removed": "from"}[past], pos[0])
		return nil
	}
	if *jsonOut {
		return cli.JSON(stdout, map[string]string{"group": pos[0], "result": past})
	}
	fmt.Fprintf(stdout, "%s group %s\n", past, pos[0])
	return nil
}

func cmdPolicy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("policy", policySynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	account := fs.String("account", "", "the account an override applies to")
	group := fs.String("group", "", "the group an override applies to (its members, under their own overrides)")
	verb, rest, err := verb(fs, args, []string{"show", "set", "reset"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	want := map[string]int{"show": 0, "set": 2, "reset": 1}[verb]
	if len(pos) != want {
		return cli.Misuse(policySynopsis, "policy %s takes %s", verb, []string{"no argument", "a KEY", "a KEY and a VALUE"}[want])
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	op := adm.Operator()
	if verb == "show" {
		ss, err := op.ShowPolicy(ctx, *account, *group)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, ss)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, s.Value, s.Source)
		}
		tw.Flush()
		return nil
	}
	value := ""
	if verb == "set" {
		value = pos[1]
		if value == "" {
			return cli.Misuse(policySynopsis, "policy set needs a value; 'policy reset KEY' removes an override")
		}
	}
	if err := op.SetPolicy(ctx, adm.Actor(), *account, *group, pos[0], value); err != nil {
		return err
	}
	scope := "account " + *account
	if *group != "" {
		scope = "group " + *group
	}
	if *jsonOut {
		return cli.JSON(stdout, map[string]string{"scope": scope, "key": pos[0], "value": value, "result": verb})
	}
	if verb == "reset" {
		fmt.Fprintf(stdout, "reset %s for %s (the default or a group's value applies)\n", pos[0], scope)
	} else {
		fmt.Fprintf(stdout, "set %s = %s for %s (applies within a second, no restart)\n", pos[0], value, scope)
	}
	return nil
}

func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("audit", auditSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	since := fs.String("since", "", "only actions since then: a duration back from now (24h) or a time (RFC 3339)")
	limit := fs.Int("limit", 0, "only the newest N actions (0: all)")
	pos, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return cli.Misuse(auditSynopsis, "%v", err)
	}
	if *limit < 0 {
		return cli.Misuse(auditSynopsis, "--limit must be 0 or more")
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	es, err := adm.Operator().Audit(ctx, from, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		return cli.JSON(stdout, es)
	}
	printAudit(stdout, es)
	return nil
}

func printAudit(w io.Writer, es []operator.AuditLine) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Detail)
	}
	tw.Flush()
	fmt.Fprintln(w, cli.Plural(len(es), "action", "actions"))
}

// parseSince reads --since: empty for everything, a duration back from
// now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration (24h) or a time (2026-01-02 or 2026-01-02T15:04:05Z)", strings.TrimSpace(s))
}
