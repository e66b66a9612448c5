package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
)

const dnsSynopsis = `phonexd dns ds|export|keygen|status [--data DIR] [--json]
  phonexd dns ksk-prepublish|ksk-activate|ksk-retire [--force] [--parent-ds-ttl D] [--data DIR] [--json]
  phonexd dns zsk-roll [--data DIR] [--json]`

// cmdDNS administers the directory zone: 'ds' prints the DS record of the
// KSK for the parent zone, 'export' the signed zone as a master file (for
// a secondary or another server), 'keygen' makes missing keys, 'status'
// and 'ksk-…' show and step a KSK rollover, 'zsk-roll' starts a ZSK
// rollover now.
func cmdDNS(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("dns", dnsSynopsis)
	data := fs.String("data", defaultData, "data directory")
	jsonOut := fs.Bool("json", false, "print JSON (all but export)")
	force := fs.Bool("force", false, "ksk-activate, ksk-retire: do not wait for caches (only for a zone no resolver validates from its parent yet)")
	parentTTL := fs.Duration("parent-ds-ttl", server.DefaultParentDSTTL, "ksk-retire: the TTL of the DS record in the parent zone")
	verb, rest, err := verb(fs, args, []string{"ds", "export", "keygen", "status", "ksk-prepublish", "ksk-activate", "ksk-retire", "zsk-roll"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	cfg, err := server.LoadConfig(*data)
	if err != nil {
		return err
	}
	switch verb {
	case "status", "ksk-prepublish", "ksk-activate", "ksk-retire":
		return kskStep(verb, cfg, *force, *parentTTL, *jsonOut, stdout)
	case "zsk-roll":
		did, err := server.ZSKRollNow(cfg, time.Now())
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, map[string]any{"zone": cfg.ZoneName(), "step": did})
		}
		fmt.Fprintf(stdout, "%s; a running node publishes it within seconds, makes it sign after the DNSKEY TTL (1h) and retires the old key an hour later\n", did)
		return nil
	case "export":
		n, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer n.Close()
		return n.ExportZone(ctx, stdout)
	case "keygen":
		if _, err := server.InitDNSKeys(cfg); err != nil {
			return err
		}
	}
	ds, err := server.ZoneDS(cfg)
	if err != nil {
		return fmt.Errorf("%w (make the keys with 'phonexd dns keygen --data %s')", err, *data)
	}
	if *jsonOut {
		return cli.JSON(stdout, map[string]any{"zone": cfg.ZoneName(), "ds": ds.String(), "key_tag": ds.KeyTag,
			"algorithm": ds.Algorithm, "digest_type": ds.DigestType, "digest": ds.Digest})
	}
	fmt.Fprintln(stdout, ds.String())
	return nil
}

// kskStep runs a KSK rollover step (or shows the state) and prints the DS
// records that validate the zone and those the parent should publish.
func kskStep(verb string, cfg server.Config, force bool, parentTTL time.Duration, jsonOut bool, stdout io.Writer) error {
	now := time.Now()
	var st server.KSKStatus
	var err error
	switch verb {
	case "status":
		st, err = server.KSKState(cfg)
	case "ksk-prepublish":
		st, err = server.KSKPrepublish(cfg, now)
	case "ksk-activate":
		st, err = server.KSKActivate(cfg, now, force)
	case "ksk-retire":
		st, err = server.KSKRetire(cfg, now, parentTTL, force)
	}
	if err != nil {
		return err
	}
	if jsonOut {
		return cli.JSON(stdout, st)
	}
	switch verb {
	case "ksk-prepublish":
		fmt.Fprintf(stdout, "KSK %d pre-published beside KSK %d; both sign the DNSKEY RRset (a running node follows within seconds)\n", st.Incoming, st.KSK)
	case "ksk-activate":
		fmt.Fprintf(stdout, "KSK %d is the zone's KSK; KSK %d still signs until ksk-retire\n", st.KSK, st.Outgoing)
	case "ksk-retire":
		fmt.Fprintf(stdout, "the old KSK is removed; KSK %d alone signs the DNSKEY RRset\n", st.KSK)
	default:
		fmt.Fprintf(stdout, "zone %s: KSK %d, rollover step: %s\n", st.Zone, st.KSK, st.Step)
	}
	fmt.Fprintln(stdout, "DS records that validate the zone now:")
	for _, ds := range st.DS {
		fmt.Fprintln(stdout, "  "+ds)
	}
	fmt.Fprintln(stdout, "the parent zone should publish:")
	for _, ds := range st.ParentDS {
		fmt.Fprintln(stdout, "  "+ds)
	}
	if st.Next != "" {
		fmt.Fprintf(stdout, "next: %s (not before %s)\n", st.Next, st.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// dnsOverride applies --dns-addr.
func dnsOverride(cfg *server.Config, addr string) {
	switch addr {
	case "":
	case "off":
		cfg.DNS.Addr = ""
	default:
		cfg.DNS.Addr = addr
	}
}
