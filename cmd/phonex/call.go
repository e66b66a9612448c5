package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/zrtp"
)

// callFlags are the options shared by call and answer.
type callFlags struct {
	fs            *flag.FlagSet
	direct        *bool
	play, record  *string
	dur           *time.Duration
	jsonOut       *bool
	prefer, sas   *string
	allowInsecure *bool
	listen        *string
	transport     *string
	cacheDir      *string
	verifySAS     *bool
	noOpus        *bool
	opusBitrate   *int
	ptime         *time.Duration
}

func newCallFlags(name, listenDefault string) *callFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	home, _ := os.UserHomeDir()
	return &callFlags{fs: fs,
		direct:        fs.Bool("direct", false, "call peer to peer, without the cluster (the only mode so far)"),
		play:          fs.String("play", "", "WAV file to send (silence when none)"),
		record:        fs.String("record", "", "WAV file to record what the peer sends"),
		dur:           fs.Duration("for", 0, "hang up after this long once connected (0: until Ctrl-C or the peer hangs up)"),
		jsonOut:       fs.Bool("json", false, "print one JSON event per line"),
		prefer:        fs.String("zrtp-prefer", "", "ZRTP key agreements in order of preference, e.g. X255,DH3k"),
		sas:           fs.String("sas", "", "SAS rendering to prefer: B32 or B256"),
		allowInsecure: fs.Bool("allow-insecure", false, "go on (with an alert) when the peer does not speak ZRTP"),
		listen:        fs.String("listen", listenDefault, "local SIP address IP:PORT"),
		transport:     fs.String("transport", "udp", "SIP transport: udp or tcp"),
		cacheDir:      fs.String("zrtp-cache", filepath.Join(home, ".phonex", "zrtp"), "directory of the ZID and the ZRTP retained secrets"),
		verifySAS:     fs.Bool("verify-sas", false, "mark the SAS as confirmed with this peer (compare it aloud first)"),
		noOpus:        fs.Bool("no-opus", false, "offer G.711 only"),
		opusBitrate:   fs.Int("opus-bitrate", sipua.DefaultOpusBitrate, "Opus bitrate to send, 8000 to 20000 bit/s"),
		ptime:         fs.Duration("ptime", sipua.DefaultPTime, "audio per packet to send: 20ms, 40ms or 60ms (40ms or more keeps a direction under 20 kbit/s)"),
	}
}

func parseAlgos(list string) ([]zrtp.Algo, error) {
	if list == "" {
		return nil, nil
	}
	var out []zrtp.Algo
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > 4 {
			return nil, fmt.Errorf("ZRTP algorithm %q: want a 4-character name such as X255, DH3k, B32, B256", name)
		}
		name = (name + "    ")[:4]
		out = append(out, zrtp.Algo(uint32(name[0])<<24|uint32(name[1])<<16|uint32(name[2])<<8|uint32(name[3])))
	}
	return out, nil
}

func (f *callFlags) options(out *eventPrinter) (sipua.CallOptions, error) {
	var o sipua.CallOptions
	if !*f.direct {
		return o, errors.New("calls through the cluster are not available yet: add --direct to call a SIP address peer to peer")
	}
	cache, err := sipua.OpenSecretCache(*f.cacheDir)
	if err != nil {
		return o, err
	}
	kas, err := parseAlgos(*f.prefer)
	if err != nil {
		return o, err
	}
	if kas != nil {
		// Keep Mult so the peer may add streams (RFC 6189 §4.4.3).
		kas = append(kas, zrtp.Mult)
	}
	sas, err := parseAlgos(*f.sas)
	if err != nil {
		return o, err
	}
	if len(sas) == 1 {
		// Preferred first, the other still accepted.
		if sas[0] == zrtp.B256 {
			sas = append(sas, zrtp.B32)
		} else {
			sas = append(sas, zrtp.B256)
		}
	}
	o = sipua.CallOptions{Record: *f.record, Cache: cache, KeyAgreements: kas, SASTypes: sas,
		AllowInsecure: *f.allowInsecure, NoOpus: *f.noOpus, OnEvent: out.print, Logger: logger(),
		OpusBitrate: *f.opusBitrate, PTime: *f.ptime}
	if *f.play != "" {
		fh, err := os.Open(*f.play)
		if err != nil {
			return o, fmt.Errorf("play: %w", err)
		}
		defer fh.Close()
		if o.Play, err = wav.Decode(fh); err != nil {
			return o, fmt.Errorf("play %s: %w", *f.play, err)
		}
	}
	return o, nil
}

// eventPrinter prints call events as text or JSON lines.
type eventPrinter struct {
	mu     sync.Mutex
	json   bool
	secure chan struct{}
	once   sync.Once
}

func (p *eventPrinter) print(e sipua.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Type == sipua.EventSecure {
		defer p.once.Do(func() { close(p.secure) })
	}
	if p.json {
		_ = cli.JSON(os.Stdout, e)
		return
	}
	switch e.Type {
	case sipua.EventRinging:
		fmt.Println("ringing…")
	case sipua.EventConnected:
		fmt.Printf("connected to %s, codec %s, media %s\n", e.Peer, e.Codec, e.RemoteRTP)
	case sipua.EventSecure:
		s := e.Secure
		fmt.Printf("SAS: %s   (read it to the peer; %s)\n", s.SAS, s.SASType)
		fmt.Printf("secure: %s %s %s %s, trust %s", s.KeyAgreement, s.Cipher, s.Hash, s.AuthTag, s.Trust)
		if s.PreviouslyVerified {
			fmt.Print(", SAS verified in an earlier call")
		}
		fmt.Println()
	case sipua.EventSASVerified:
		fmt.Println("SAS marked as verified:", e.Reason)
	case sipua.EventHold:
		fmt.Println("the peer put the call on hold")
	case sipua.EventResume:
		fmt.Println("the peer resumed the call")
	case sipua.EventAlert:
		fmt.Println("ALERT:", e.Reason)
	case sipua.EventEnded:
		s := e.Stats
		fmt.Printf("ended: %s; sent %d packets (%d bytes), received %d packets (%d bytes), lost %d, jitter %.1f ms\n",
			e.Reason, s.PacketsSent, s.BytesSent, s.PacketsReceived, s.BytesReceived, s.Lost, s.JitterMS)
	}
}

func cmdCall(ctx context.Context, args []string) error {
	f := newCallFlags("call", "127.0.0.1:0")
	pos, err := cli.Parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usage(usage)
	}
	out := &eventPrinter{json: *f.jsonOut, secure: make(chan struct{})}
	opts, err := f.options(out)
	if err != nil {
		return err
	}
	ua, err := sipua.NewUA(sipua.Config{Listen: *f.listen, Transport: *f.transport, Logger: logger()})
	if err != nil {
		return err
	}
	defer ua.Close()
	target := pos[0]
	if !strings.HasPrefix(target, "sip:") {
		target = "sip:" + target
	}
	call, err := ua.Dial(ctx, target, opts)
	if err != nil {
		return err
	}
	return runCall(ctx, call, f, out)
}

func cmdAnswer(ctx context.Context, args []string) error {
	f := newCallFlags("answer", "")
	pos, err := cli.Parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *f.listen == "" {
		return cli.Usage(usage)
	}
	out := &eventPrinter{json: *f.jsonOut, secure: make(chan struct{})}
	opts, err := f.options(out)
	if err != nil {
		return err
	}
	ua, err := sipua.NewUA(sipua.Config{Listen: *f.listen, Transport: *f.transport, Logger: logger()})
	if err != nil {
		return err
	}
	defer ua.Close()
	if !*f.jsonOut {
		fmt.Fprintf(os.Stderr, "waiting for a call on %s\n", ua.URI())
	}
	call, err := ua.Accept(ctx, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return runCall(ctx, call, f, out)
}

// runCall waits for the end of a connected call: --for, Ctrl-C or the
// peer's BYE.
func runCall(ctx context.Context, call *sipua.Call, f *callFlags, out *eventPrinter) error {
	var timeout <-chan time.Time
	if *f.dur > 0 {
		t := time.NewTimer(*f.dur)
		defer t.Stop()
		timeout = t.C
	}
	secure := out.secure
	for {
		select {
		case <-secure:
			secure = nil
			if *f.verifySAS {
				if err := call.ConfirmSAS(); err != nil {
					fmt.Fprintln(os.Stderr, "phonex:", err)
				}
			}
			continue
		case <-call.Done():
			return call.Err()
		case <-timeout:
		case <-ctx.Done():
		}
		break
	}
	return call.Hangup(context.Background())
}
