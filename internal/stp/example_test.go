package stp_test

import (
	"errors"
	"fmt"

	"github.com/phonex/phonex/internal/stp"
)

// A further STP, such as the ratchet STP, plugs into the dispatcher under
// its protocol type and version.
func ExampleDispatcher_Register() {
	d := stp.NewDispatcher()
	ratchet := stp.Protocol{Type: stp.TypeRatchet, Version: 1}
	err := d.Register(ratchet, stp.OpenerFunc(func(p stp.Protocol, payload []byte, r *stp.Receiver) (*stp.Message, error) {
		return &stp.Message{Protocol: p, Payload: payload}, nil
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	env, _ := stp.MarshalEnvelope(ratchet, []byte("ratchet message"))
	m, err := d.Open(env, &stp.Receiver{})
	fmt.Println(m.Protocol, string(m.Payload), err)

	smime, _ := stp.MarshalEnvelope(stp.SMIMEv1, []byte("MIME-Version: 1.0"))
	_, err = d.Open(smime, &stp.Receiver{})
	fmt.Println(errors.Is(err, stp.ErrUnsupported))
	// Output:
	// 6/1 ratchet message <nil>
	// true
}
