package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
)

const dnsSynopsis = "phonexd dns ds|export|keygen [--data DIR] [--json]"

// cmdDNS administers the directory zone: 'ds' prints the DS record of the
// KSK for the parent zone, 'export' the signed zone as a master file (for
// a secondary or another server), 'keygen' makes missing keys.
func cmdDNS(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("dns", dnsSynopsis)
	data := fs.String("data", defaultData, "data directory")
	jsonOut := fs.Bool("json", false, "print JSON (ds, keygen)")
	verb, rest, err := verb(fs, args, []string{"ds", "export", "keygen"})
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
