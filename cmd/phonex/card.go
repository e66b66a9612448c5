package main

import (
	"context"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

// enrollFromCard enrolls with the server, CA fingerprint and code of an
// operator's enrollment card; the CA the card names is pinned, so a server
// with another CA is refused.
func (a *app) enrollFromCard(ctx context.Context, c *common, syn string, pos []string, image, text, server, caFile, fp, code, device, suite string, bits int) error {
	if image != "" && text != "" {
		return cli.Misuse(syn, "give --qr-image or --qr-text, not both")
	}
	if server != "" || caFile != "" || fp != "" || code != "" {
		return cli.Misuse(syn, "the card gives the server, the CA and the code: drop --server, --ca-file, --ca-fingerprint and --code")
	}
	if len(pos) > 1 {
		return cli.Misuse(syn, "enroll takes at most one account with a card, USER@DOMAIN (got %d arguments)", len(pos))
	}
	var card sdk.EnrollmentCard
	var err error
	if image != "" {
		card, err = sdk.ReadEnrollmentCardFile(image)
	} else {
		card, err = sdk.ParseEnrollmentCard(text)
	}
	if err != nil {
		return err
	}
	cfg := sdk.EnrollConfig{Dir: *c.profile, Device: device, Suite: sdk.KeySuite(suite), RSABits: bits}
	if len(pos) == 1 {
		cfg.User = pos[0]
	}
	if err := card.Apply(&cfg); err != nil {
		return err
	}
	return a.enroll(ctx, c, "enroll", cfg)
}
