package sdk_test

import (
	"fmt"

	"github.com/phonex/phonex/sdk"
)

// An operator's enrollment card fills the configuration of Enroll: the
// server, the CA fingerprint to pin and the one-time code.
func ExampleParseEnrollmentCard() {
	card, err := sdk.ParseEnrollmentCard("phonex://enroll?v=1&user=alpha%40example.org&server=node1.example.org%3A8443" +
		"&ca=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08&code=ABCD-EFGH-JKLM-NPQR")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := sdk.EnrollConfig{Dir: "/tmp/profile", Device: "laptop"}
	if err := card.Apply(&cfg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.User, cfg.Server, cfg.CAFingerprint[:16])
	// Then: dev, err := sdk.Enroll(ctx, cfg, nil), which refuses a server
	// whose CA is not the card's with sdk.ErrCAMismatch.

	_, err = sdk.ParseEnrollmentCard("https://example.org/")
	fmt.Println(err)
	// Output:
	// alpha@example.org node1.example.org:8443 9f86d081884c7d65
	// read enrollment card: not a PhoneX enrollment card
}
