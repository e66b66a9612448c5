package main

import (
	"bufio"
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
	"github.com/phonex/phonex/internal/client"
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
	profile       *string
	pwFile        *string
	noOpus        *bool
	opusBitrate   *int
	ptime         *time.Duration
}

func newCallFlags(name, listenDefault string) *callFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	home, _ := os.UserHomeDir()
	return &callFlags{fs: fs,
		profile:       fs.String("profile", filepath.Join(home, ".phonex"), "profile directory: its encrypted database keeps the ZRTP secrets (opened when it exists)"),
		pwFile:        fs.String("password-file", "", "read the profile password from this file (first line)"),
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
		cacheDir:      fs.String("zrtp-cache", "", "calls without a profile: directory of the ZID and the ZRTP retained secrets, unencrypted (default ~/.phonex/zrtp)"),
		verifySAS:     fs.Bool("verify-sas", false, "removed: confirm the SAS during the call (type y) or afterwards with phonex verify-call"),
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

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// errVerifySASRemoved explains the way that replaced --verify-sas.
var errVerifySASRemoved = errors.New("--verify-sas is gone: it trusted the peer without anyone comparing the SAS. " +
	"Read the SAS aloud during the call and type y (then Enter) when the peer reads the same words, " +
	"or afterwards run: phonex verify-call PEER 'SAS WORDS'")

// secretStore opens where the ZRTP secrets live: the profile's encrypted
// database when a profile is given or the default one exists, otherwise
// (and only for calls without a profile) the files of --zrtp-cache, which
// a warning event points out. close must be called after the call.
func secretStore(ctx context.Context, fs *flag.FlagSet, profile, pwFile, cacheDir string, out *eventPrinter) (sipua.SecretStore, func(), error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given["profile"] && cacheDir != "" {
		return nil, nil, errors.New("give --profile (secrets in its encrypted database) or --zrtp-cache (no profile), not both")
	}
	if cacheDir == "" && (given["profile"] || client.Exists(profile)) {
		c := &common{profile: &profile, pwFile: &pwFile, jsonOut: &out.json}
		c.progress = func(step string) {
			if isTerminal(os.Stderr) && !out.json {
				fmt.Fprintf(os.Stderr, "… %s\n", step)
			}
		}
		p, _, err := c.open(ctx)
		if err != nil {
			return nil, nil, err
		}
		if old := filepath.Join(profile, "zrtp"); dirExists(old) {
			out.print(sipua.Event{Type: sipua.EventWarning, Time: time.Now(), Reason: "the unencrypted ZRTP cache " + old +
				" of earlier versions is not used any more (the profile's encrypted database has its own ZID and secrets); remove it, it holds retained secrets in the clear"})
		}
		return p.ZRTPStore(), func() { p.Close() }, nil
	}
	if cacheDir == "" {
		home, _ := os.UserHomeDir()
		cacheDir = filepath.Join(home, ".phonex", "zrtp")
	}
	fstore, err := sipua.OpenFileStore(cacheDir)
	if err != nil {
		return nil, nil, err
	}
	out.print(sipua.Event{Type: sipua.EventWarning, Time: time.Now(), Reason: "no profile: the ZRTP identity, retained secrets and trust flags are kept unencrypted in " +
		cacheDir + "; enroll a profile (or give --profile) to keep them in its encrypted database"})
	return fstore, func() {}, nil
}

func (f *callFlags) options(ctx context.Context, out *eventPrinter) (sipua.CallOptions, func(), error) {
	var o sipua.CallOptions
	if *f.verifySAS {
		return o, nil, errVerifySASRemoved
	}
	if !*f.direct {
		return o, nil, errors.New("calls through the cluster are not available yet: add --direct to call a SIP address peer to peer")
	}
	cache, closeStore, err := secretStore(ctx, f.fs, *f.profile, *f.pwFile, *f.cacheDir, out)
	if err != nil {
		return o, nil, err
	}
	o, err = f.callOptions(cache, out)
	if err != nil {
		closeStore()
		return o, nil, err
	}
	return o, closeStore, nil
}

func (f *callFlags) callOptions(cache sipua.SecretStore, out *eventPrinter) (sipua.CallOptions, error) {
	var o sipua.CallOptions
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
		if s.Trust == sipua.TrustUnsafe {
			fmt.Println("UNSAFE: this may be a man in the middle (see the alert). Trust the peer again only if it reads exactly this SAS.")
		}
		if !s.PreviouslyVerified {
			fmt.Printf("Compare the SAS aloud: type y and Enter if the peer reads %q, n if not (or later: phonex verify-call %s 'SAS')\n", s.SAS, s.PeerZID)
		}
	case sipua.EventSASVerified:
		fmt.Println("SAS marked as verified:", e.Reason)
	case sipua.EventWarning:
		fmt.Fprintln(os.Stderr, "warning:", e.Reason)
	case sipua.EventListening:
		fmt.Fprintf(os.Stderr, "waiting for a call on %s\n", e.Peer)
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
	opts, closeStore, err := f.options(ctx, out)
	if err != nil {
		return err
	}
	defer closeStore()
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
	opts, closeStore, err := f.options(ctx, out)
	if err != nil {
		return err
	}
	defer closeStore()
	ua, err := sipua.NewUA(sipua.Config{Listen: *f.listen, Transport: *f.transport, Logger: logger()})
	if err != nil {
		return err
	}
	defer ua.Close()
	out.print(sipua.Event{Type: sipua.EventListening, Time: time.Now(), Peer: ua.URI()})
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
// peer's BYE. Once the SAS is shown, a line "y" on standard input confirms
// it and "n" says the peer read a different one; lines typed before the
// SAS was shown count for nothing.
func runCall(ctx context.Context, call *sipua.Call, f *callFlags, out *eventPrinter) error {
	var timeout <-chan time.Time
	if *f.dur > 0 {
		t := time.NewTimer(*f.dur)
		defer t.Stop()
		timeout = t.C
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			select {
			case lines <- strings.ToLower(strings.TrimSpace(sc.Text())):
			case <-call.Done():
				return
			}
		}
	}()
	secure, shown := out.secure, false
	for {
		select {
		case <-secure:
			secure, shown = nil, true
			continue
		case l := <-lines:
			if !shown {
				continue
			}
			var err error
			switch l {
			case "y", "yes":
				err = call.ConfirmSAS()
			case "n", "no":
				err = call.RejectSAS()
			default:
				continue
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "phonex:", err)
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

// cmdVerifyCall confirms, after the call, the SAS of the last call with a
// peer: the words must be the SAS that call showed.
func cmdVerifyCall(ctx context.Context, args []string) error {
	c := newCommon("verify-call")
	cacheDir := c.fs.String("zrtp-cache", "", "for calls made without a profile: the --zrtp-cache directory they used (default ~/.phonex/zrtp)")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return cli.Usage(usage)
	}
	out := &eventPrinter{json: *c.jsonOut}
	store, closeStore, err := secretStore(ctx, c.fs, *c.profile, *c.pwFile, *cacheDir, out)
	if err != nil {
		return err
	}
	defer closeStore()
	who, words := pos[0], strings.Join(pos[1:], " ")
	res, err := sipua.ConfirmLastCall(store, who, words)
	if err != nil {
		return fmt.Errorf("verify-call: %w", err)
	}
	v := map[string]any{"event": "sas_verified", "peer": res.Peer, "peer_zid": res.PeerZID.String(), "sas": res.SAS,
		"call_time": res.At.UTC().Format(time.RFC3339), "unsafe": res.Unsafe}
	return c.print(v, func() {
		if res.Unsafe {
			fmt.Printf("The call with %s at %s was UNSAFE: a retained-secret mismatch, or the peer was marked unsafe before (a man in the middle, or the peer lost its ZRTP cache).\n",
				res.Peer, res.At.Local().Format(time.DateTime))
			fmt.Println("You confirmed that the peer read the same SAS, so that call's secret is kept.")
		}
		fmt.Printf("SAS %q confirmed: %s (ZID %s) is verified; later calls show \"previously verified\".\n", res.SAS, res.Peer, res.PeerZID)
	})
}
