package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/server"
)

const federationSynopsis = "phonexd federation add DOMAIN --ca-file FILE --api HOST:PORT --sip HOST:PORT --data DIR [--store STORE] [--json] | " +
	"phonexd federation add DOMAIN --dns HOST:PORT --anchor FILE --data DIR [--store STORE] [--json] | " +
	"phonexd federation accept DOMAIN --ca-file FILE [--api HOST:PORT] [--sip HOST:PORT] --data DIR [--store STORE] [--json] | " +
	"phonexd federation remove DOMAIN --data DIR [--store STORE] [--json] | phonexd federation list --data DIR [--store STORE] [--json]"

func cmdFederation(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("federation", federationSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	caFile := fs.String("ca-file", "", "the peer cluster's CA certificate (PEM), obtained from its operator")
	apiAddr := fs.String("api", "", "the peer's API endpoint, HOST:PORT")
	sipAddr := fs.String("sip", "", "the peer's SIP over TLS endpoint, HOST:PORT")
	dnsAddr := fs.String("dns", "", "find the peer through its DNSSEC-signed zone, asking this server (HOST:PORT), instead of --ca-file, --api and --sip")
	anchorFile := fs.String("anchor", "", "with --dns: the trust anchor, DS or DNSKEY records (zone file lines) of the peer's zone or a zone above it")
	verb, rest, err := verb(fs, args, []string{"add", "accept", "remove", "list"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	if verb == "list" {
		if err := noArgs(fs, pos); err != nil {
			return err
		}
	} else if len(pos) != 1 {
		return cli.Misuse(federationSynopsis, "federation %s takes one domain", verb)
	}
	switch verb {
	case "add":
		if *dnsAddr != "" || *anchorFile != "" {
			if err := fs.Require("dns", "anchor"); err != nil {
				return err
			}
			if *caFile != "" || *apiAddr != "" || *sipAddr != "" {
				return cli.Misuse(federationSynopsis, "--dns finds the CA and the endpoints; give either --dns and --anchor or --ca-file, --api and --sip")
			}
			break
		}
		if err := fs.Require("ca-file", "api", "sip"); err != nil {
			return err
		}
	case "accept":
		if err := fs.Require("ca-file"); err != nil {
			return err
		}
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	var p server.PeerInfo
	switch verb {
	case "list":
		ps, err := adm.Peers(ctx)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, ps)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tCA SHA-256\tAPI\tSIP\tQUEUED\tSTATE")
		for _, x := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", x.Domain, x.CASHA256, x.API, x.SIP, x.Queued, peerState(x))
		}
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(ps), "peer", "peers"))
		return nil
	case "add":
		if *dnsAddr != "" {
			anchors, aerr := readAnchors(*anchorFile)
			if aerr != nil {
				return aerr
			}
			p, err = adm.AddPeerDNS(ctx, pos[0], *dnsAddr, anchors)
			break
		}
		p, err = adm.AddPeer(ctx, pos[0], *caFile, *apiAddr, *sipAddr)
	case "accept":
		p, err = adm.AcceptPeerCA(ctx, pos[0], *caFile, *apiAddr, *sipAddr)
	case "remove":
		if err := adm.RemovePeer(ctx, pos[0]); err != nil {
			return err
		}
		return result(stdout, *jsonOut, verb, pos[0])
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		return cli.JSON(stdout, p)
	}
	fmt.Fprintf(stdout, "%s %s: CA %s, API %s, SIP %s\n", map[string]string{"add": "added", "accept": "pinned a new CA for"}[verb], p.Domain, p.CASHA256, p.API, p.SIP)
	return nil
}

// readAnchors reads DS and DNSKEY records, one per line in zone file
// syntax; blank lines and comments are skipped.
func readAnchors(path string) ([]dns.RR, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust anchor: %w", err)
	}
	rrs, err := dnsval.ParseAnchors(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rrs, nil
}

func peerState(p server.PeerInfo) string {
	s := "never reached"
	switch {
	case p.LastError != "" && !p.FailedAt.IsZero():
		s = "failing since " + p.FailedAt.UTC().Format(time.RFC3339)
	case !p.DeliveredAt.IsZero():
		s = "delivered " + p.DeliveredAt.UTC().Format(time.RFC3339)
	}
	if p.Presented != "" {
		s += "; refused a different CA " + p.Presented + " (federation accept to pin it)"
	}
	return s
}
