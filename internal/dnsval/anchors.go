package dnsval

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// ErrNoAnchors: a trust anchor text holds no DS or DNSKEY record.
var ErrNoAnchors = errors.New("no DS or DNSKEY record in the trust anchor")

// ParseAnchors reads trust anchors: DS or DNSKEY records in master file
// syntax (RFC 1035 §5.1), one a line, as 'phonexd dns ds' prints them;
// '#' and ';' start comment lines. Any other record, or a line that holds
// no record at all (dns.NewRR returns none for "()"), is refused with its
// line number.
func ParseAnchors(b []byte) ([]dns.RR, error) {
	var out []dns.RR
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		rr, err := dns.NewRR(l)
		if err != nil {
			return nil, fmt.Errorf("trust anchor line %d: %w", line, err)
		}
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
			out = append(out, rr)
		case nil:
			return nil, fmt.Errorf("trust anchor line %d: no record", line)
		default:
			return nil, fmt.Errorf("trust anchor line %d: %s is not a DS or DNSKEY record", line, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	if len(out) == 0 {
		return nil, ErrNoAnchors
	}
	return out, nil
}
