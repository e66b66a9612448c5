package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

// callFlags are the options shared by call and answer.
type callFlags struct {
	*cli.Flags
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
	ptime         *ptimeValue
	relay, noICE  *bool
	iceServers    *string
	turnUser      *string
	turnPassFile  *string
	device        *string
	decline       *bool
	ringFor       *time.Duration
}

func newCallFlags(name, synopsis, listenDefault string) *callFlags {
	fs := cli.NewFlags(name, synopsis)
	home, _ := os.UserHomeDir()
	f := &callFlags{Flags: fs,
		profile:       fs.String("profile", filepath.Join(home, ".phonex"), "profile directory: its encrypted database keeps the ZRTP secrets (opened when it exists)"),
		pwFile:        fs.String("password-file", "", "read the profile password from this file (first line)"),
		direct:        fs.Bool("direct", false, "call a SIP address peer to peer, without the cluster"),
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
		opusBitrate:   fs.Int("opus-bitrate", 0, "Opus bitrate to send, 8000 to 24000 bit/s; 0 is the highest that keeps a direction under 20 kbit/s at the IP level for the --ptime and the SRTP tag agreed (22000 at 120 ms, 17500 at 60 ms with HS32)"),
		relay:         fs.Bool("relay", false, "send the media only through the TURN relay (the cluster's, or that of --ice-server): the peer never learns this address"),
		noICE:         fs.Bool("no-ice", false, "leave ICE out: offer only the plain address (for peers that mishandle ICE)"),
		iceServers:    fs.String("ice-server", "", "STUN/TURN server URLs for ICE, comma-separated, e.g. turn:relay.example.org:3478?transport=udp (default for calls by address: the cluster's)"),
		turnUser:      fs.String("turn-user", "", "TURN username (TURN REST form expiry:user); the password comes from PHONEX_TURN_PASSWORD or --turn-password-file"),
		turnPassFile:  fs.String("turn-password-file", "", "read the TURN password from this file (first line)"),
		device:        fs.String("device", "", "call: ring only the callee's device of this name"),
		decline:       fs.Bool("decline", false, "answer: decline the next call (the caller is told) instead of answering it"),
		ringFor:       fs.Duration("ring-for", 0, "call: give up when nobody answered within this long (0: the cluster's limit, 45s)"),
	}
	pt := ptimeValue(sdk.DefaultPTime)
	fs.Var(&pt, "ptime", "audio per packet to send: 20, 40, 60, 80, 100 or 120 (ms; 60ms works too); longer packets leave more of the bitrate to the codec but add delay")
	f.ptime = &pt
	return f
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// errVerifySASRemoved explains the way that replaced --verify-sas.
var errVerifySASRemoved = errors.New("--verify-sas is gone: it trusted the peer without anyone comparing the SAS. " +
	"Read the SAS aloud during the call and type y (then Enter) when the peer reads the same words, " +
	"or afterwards run: phonex verify-call PEER 'SAS WORDS'")

// zrtpStore opens where the ZRTP secrets live: the profile's encrypted
// database when a profile is given or the default one exists, otherwise
// (and only for calls without a profile) the files of --zrtp-cache, which
// a warning event points out. done must be called after the call.
func (a *app) zrtpStore(ctx context.Context, fs *cli.Flags, profile, pwFile, cacheDir string, out *eventPrinter) (store *sdk.ZRTPStore, done func(), err error) {
	store, _, done, err = a.zrtpStoreDevice(ctx, fs, profile, pwFile, cacheDir, out)
	return store, done, err
}

// zrtpStoreDevice is zrtpStore that also returns the opened device (nil
// without a profile), for calls that ask the cluster for its relay.
func (a *app) zrtpStoreDevice(ctx context.Context, fs *cli.Flags, profile, pwFile, cacheDir string, out *eventPrinter) (store *sdk.ZRTPStore, dev *sdk.Device, done func(), err error) {
	if fs.IsSet("profile") && cacheDir != "" {
		return nil, nil, nil, cli.Misuse(fs.Usage(), "give --profile (secrets in its encrypted database) or --zrtp-cache (no profile), not both")
	}
	if cacheDir == "" && (fs.IsSet("profile") || sdk.Exists(profile)) {
		c := &common{Flags: fs, a: a, profile: &profile, pwFile: &pwFile, jsonOut: &out.json}
		d, _, err := c.open(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		if old := filepath.Join(profile, "zrtp"); dirExists(old) {
			out.print(sdk.CallEvent{Type: sdk.CallWarning, Time: time.Now(), Reason: "the unencrypted ZRTP cache " + old +
				" of earlier versions is not used any more (the profile's encrypted database has its own ZID and secrets); remove it, it holds retained secrets in the clear"})
		}
		return d.ZRTPStore(), d, func() { d.Close() }, nil
	}
	if cacheDir == "" {
		home, _ := os.UserHomeDir()
		cacheDir = filepath.Join(home, ".phonex", "zrtp")
	}
	store, err = sdk.OpenZRTPCache(cacheDir)
	if err != nil {
		return nil, nil, nil, err
	}
	out.print(sdk.CallEvent{Type: sdk.CallWarning, Time: time.Now(), Reason: "no profile: the ZRTP identity, retained secrets and trust flags are kept unencrypted in " +
		cacheDir + "; enroll a profile (or give --profile) to keep them in its encrypted database"})
	return store, nil, func() {}, nil
}

// options checks the flags shared by direct calls and calls through the
// cluster and returns the call options and what to run once the call is
// over.
func (f *callFlags) options(a *app, out *eventPrinter) (sdk.CallOptions, func(), error) {
	var o sdk.CallOptions
	if *f.verifySAS {
		return o, nil, errVerifySASRemoved
	}
	kas, err := sdk.ParseAlgorithms(*f.prefer)
	if err != nil {
		return o, nil, fmt.Errorf("--zrtp-prefer: %w", err)
	}
	sas, err := sdk.ParseAlgorithms(*f.sas)
	if err != nil {
		return o, nil, fmt.Errorf("--sas: %w", err)
	}
	o = sdk.CallOptions{Record: *f.record, KeyAgreements: kas, SASTypes: sas, AllowInsecure: *f.allowInsecure, NoOpus: *f.noOpus,
		OnEvent: out.print, OpusBitrate: *f.opusBitrate, PTime: time.Duration(*f.ptime), Relay: *f.relay, NoICE: *f.noICE}
	if o.ICEServers, err = f.iceServerList(a); err != nil {
		return o, nil, err
	}
	if o.Relay && o.NoICE {
		return o, nil, cli.Misuse(f.Usage(), "--relay needs ICE: drop --no-ice")
	}
	if o.Relay && len(o.ICEServers.URLs) == 0 && *f.cacheDir != "" {
		return o, nil, cli.Misuse(f.Usage(), "--relay needs a TURN server: give --ice-server turn:HOST:PORT with --turn-user, or a profile (its cluster's relay)")
	}
	done := func() {}
	if *f.play != "" {
		fh, err := os.Open(*f.play)
		if err != nil {
			return o, nil, fmt.Errorf("play: %w", err)
		}
		o.Play = fh
		done = func() { fh.Close() }
	}
	return o, done, nil
}

// setup checks the flags of a direct call and returns the phone, the call
// options and what to run once the call is over.
func (f *callFlags) setup(ctx context.Context, a *app, out *eventPrinter) (*sdk.Phone, sdk.CallOptions, func(), error) {
	o, closeOpts, err := f.options(a, out)
	if err != nil {
		return nil, o, nil, err
	}
	closers := []func(){closeOpts}
	done := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	store, dev, closeStore, err := a.zrtpStoreDevice(ctx, f.Flags, *f.profile, *f.pwFile, *f.cacheDir, out)
	if err != nil {
		done()
		return nil, o, nil, err
	}
	closers = append(closers, closeStore)
	if err := clusterRelay(ctx, f.Usage(), dev, &o); err != nil { // relay.go
		done()
		return nil, o, nil, err
	}
	ph, err := sdk.NewPhone(sdk.PhoneConfig{Listen: *f.listen, Transport: *f.transport, ZRTP: store, Logger: logger(a.getenv, a.stderr)})
	if err != nil {
		done()
		return nil, o, nil, err
	}
	closers = append(closers, func() { ph.Close() })
	return ph, o, done, nil
}

// device opens the profile for a call through the cluster.
func (f *callFlags) openDevice(ctx context.Context, a *app) (*sdk.Device, error) {
	if f.IsSet("listen") || f.IsSet("transport") || *f.cacheDir != "" {
		return nil, cli.Misuse(f.Usage(), "--listen, --transport and --zrtp-cache are for --direct calls; calls through the cluster use the profile's connection and its encrypted ZRTP store")
	}
	c := &common{Flags: f.Flags, a: a, profile: f.profile, pwFile: f.pwFile, jsonOut: f.jsonOut}
	d, _, err := c.open(ctx)
	return d, err
}

// failed reports, with --json, why a call through the cluster did not
// connect: a "failed" event with the reason in words and a short cause.
// The words also go to standard error as the command's error, once.
func (p *eventPrinter) failed(err error) {
	cause := sdk.CallCause(err)
	if cause == "" || !p.json {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = cli.JSON(p.stdout, map[string]any{"event": "failed", "time": time.Now().UTC().Format(time.RFC3339Nano), "reason": err.Error(), "cause": cause})
}

// eventPrinter prints call events as text or JSON lines.
type eventPrinter struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	json           bool
	secure         chan struct{}
	once           sync.Once
}

func (p *eventPrinter) print(e sdk.CallEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Type == sdk.CallSecure && p.secure != nil {
		defer p.once.Do(func() { close(p.secure) })
	}
	if p.json {
		_ = cli.JSON(p.stdout, e)
		return
	}
	w := p.stdout
	switch e.Type {
	case sdk.CallRinging:
		fmt.Fprintln(w, "ringing…")
	case sdk.CallConnected:
		fmt.Fprintf(w, "connected to %s, codec %s, media %s\n", e.Peer, e.Codec, e.RemoteRTP)
	case sdk.CallSecure:
		s := e.Secure
		fmt.Fprintf(w, "SAS: %s   (read it to the peer; %s)\n", s.SAS, s.SASType)
		fmt.Fprintf(w, "secure: %s %s %s %s, trust %s", s.KeyAgreement, s.Cipher, s.Hash, s.AuthTag, s.Trust)
		if s.PreviouslyVerified {
			fmt.Fprint(w, ", SAS verified in an earlier call")
		}
		fmt.Fprintln(w)
		switch s.SignedHash {
		case sdk.SignedHashVerified:
			fmt.Fprintf(w, "signed zrtp-hash: verified, by %s; messaging identities bound: %s\n", s.SignedBy, s.AuxSecret)
		case sdk.SignedHashOff:
		default:
			fmt.Fprintf(w, "signed zrtp-hash: %s: %s\n", s.SignedHash, s.SignedHashDetail)
		}
		if s.Trust == sdk.TrustUnsafe {
			fmt.Fprintln(w, "UNSAFE: this may be a man in the middle (see the alert). Trust the peer again only if it reads exactly this SAS.")
		}
		if !s.PreviouslyVerified {
			fmt.Fprintf(w, "Compare the SAS aloud: type y and Enter if the peer reads %q, n if not (or later: phonex verify-call %s 'SAS')\n", s.SAS, s.PeerZID)
		}
	case sdk.CallSASVerified:
		fmt.Fprintln(w, "SAS marked as verified:", e.Reason)
	case sdk.CallWarning:
		fmt.Fprintln(p.stderr, "warning:", e.Reason)
	case sdk.CallListening:
		fmt.Fprintf(p.stderr, "waiting for a call on %s\n", e.Peer)
	case sdk.CallHold:
		fmt.Fprintln(w, "the peer put the call on hold")
	case sdk.CallResume:
		fmt.Fprintln(w, "the peer resumed the call")
	case sdk.CallAlert:
		fmt.Fprintln(w, "ALERT:", e.Reason)
	case sdk.CallPath:
		if e.Reason != "" {
			fmt.Fprintf(w, "media path: %s (%s)\n", e.Path, e.Reason)
		} else {
			fmt.Fprintf(w, "media path: %s\n", e.Path)
		}
	case sdk.CallEnded:
		s := e.Stats
		path := ""
		if s.Path != "" {
			path = "; path " + s.Path
		}
		fmt.Fprintf(w, "ended: %s; sent %s (%d bytes, %.1f kbit/s with headers), received %s (%d bytes), "+
			"loss %.1f%% (%d frames: %d rebuilt by FEC, %d from redundancy, %d concealed, %d of them bridged to the next packet), jitter %.1f ms, %d ms of packetization and buffering delay; the peer saw %.1f%% loss%s\n",
			e.Reason, cli.Plural(int(s.PacketsSent), "packet", "packets"), s.BytesSent, s.SendIPKbps,
			cli.Plural(int(s.PacketsReceived), "packet", "packets"), s.BytesReceived,
			s.LossPercent, s.Lost, s.FECRecovered, s.RedRecovered, s.Concealed, s.Bridged, s.JitterMS, s.DelayMS, s.PeerLossPercent, path)
	}
}

const (
	callSynopsis = "phonex call USER@DOMAIN [--device NAME] [--ring-for DUR] [--play F.wav] [--record F.wav] [--for DUR] [--json] [--zrtp-prefer X255,DH3k] [--sas B256] [--allow-insecure] [--ice-server URL --turn-user NAME] [--relay | --no-ice] [--profile DIR]\n" +
		"       phonex call SIP_URI --direct [same options] [--listen IP:PORT] [--transport udp|tcp] [--profile DIR | --zrtp-cache DIR]"
	answerSynopsis = "phonex answer [--decline] [--play F.wav] [--record F.wav] [--for DUR] [--json] [--ice-server URL --turn-user NAME] [--relay | --no-ice] [--profile DIR]\n" +
		"       phonex answer --direct --listen IP:PORT [same options as call]"
	verifyCallSynopsis = "phonex verify-call PEER_ZID|SIP_URI SAS-WORDS [--zrtp-cache DIR] [--json]"
)

func (a *app) cmdCall(ctx context.Context, args []string) error {
	f := newCallFlags("call", callSynopsis, "127.0.0.1:0")
	pos, err := f.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(callSynopsis, "call takes one USER@DOMAIN (or a SIP_URI with --direct)")
	}
	if *f.decline {
		return cli.Misuse(callSynopsis, "--decline is for answer")
	}
	out := &eventPrinter{stdout: a.stdout, stderr: a.stderr, json: *f.jsonOut, secure: make(chan struct{})}
	if !*f.direct && (strings.HasPrefix(pos[0], "sip:") || strings.HasPrefix(pos[0], "sips:") || strings.Contains(pos[0], ":")) {
		return cli.Misuse(callSynopsis, "missing required flag --direct for the SIP address %s; to call a person through the cluster, give USER@DOMAIN", pos[0])
	}
	if !*f.direct {
		opts, closeOpts, err := f.options(a, out)
		if err != nil {
			return err
		}
		defer closeOpts()
		opts.Device, opts.RingTimeout = *f.device, *f.ringFor
		d, err := f.openDevice(ctx, a)
		if err != nil {
			return err
		}
		defer d.Close()
		call, err := d.Call(ctx, pos[0], opts) // with the cluster's STUN/TURN unless --ice-server or --no-ice
		if err != nil {
			out.failed(err)
			return err
		}
		return a.runCall(ctx, call, f, out)
	}
	if *f.device != "" {
		return cli.Misuse(callSynopsis, "--device names a device of the callee's account: it is for calls through the cluster, not --direct")
	}
	ph, opts, done, err := f.setup(ctx, a, out)
	if err != nil {
		return err
	}
	defer done()
	call, err := ph.Dial(ctx, pos[0], opts)
	if err != nil {
		return err
	}
	return a.runCall(ctx, call, f, out)
}

func (a *app) cmdAnswer(ctx context.Context, args []string) error {
	f := newCallFlags("answer", answerSynopsis, "")
	pos, err := f.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cli.Misuse(answerSynopsis, "unexpected argument %q", pos[0])
	}
	if *f.device != "" || *f.ringFor != 0 {
		return cli.Misuse(answerSynopsis, "--device and --ring-for are for call")
	}
	if *f.decline && *f.direct {
		return cli.Misuse(answerSynopsis, "--decline is for calls through the cluster, not --direct")
	}
	out := &eventPrinter{stdout: a.stdout, stderr: a.stderr, json: *f.jsonOut, secure: make(chan struct{})}
	if !*f.direct {
		return a.answerRouted(ctx, f, out)
	}
	if err := f.Require("listen"); err != nil {
		return err
	}
	ph, opts, done, err := f.setup(ctx, a, out)
	if err != nil {
		return err
	}
	defer done()
	call, err := ph.Accept(ctx, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return a.runCall(ctx, call, f, out)
}

// answerRouted answers (or declines) the next call through the cluster.
func (a *app) answerRouted(ctx context.Context, f *callFlags, out *eventPrinter) error {
	opts, closeOpts, err := f.options(a, out)
	if err != nil {
		return err
	}
	defer closeOpts()
	d, err := f.openDevice(ctx, a)
	if err != nil {
		return err
	}
	defer d.Close()
	if *f.decline {
		out.print(sdk.CallEvent{Type: sdk.CallListening, Time: time.Now(), Peer: d.Identity()})
		who, err := d.Decline(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return err
		}
		if out.json {
			return cli.JSON(a.stdout, map[string]any{"event": "declined", "time": time.Now().UTC().Format(time.RFC3339Nano), "peer": who})
		}
		fmt.Fprintf(a.stdout, "declined a call from %s\n", who)
		return nil
	}
	call, err := d.Answer(ctx, opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		out.failed(err)
		return err
	}
	return a.runCall(ctx, call, f, out)
}

// runCall waits for the end of a connected call: --for, Ctrl-C or the
// peer's BYE. Once the SAS is shown, a line "y" on standard input confirms
// it and "n" says the peer read a different one; lines typed before the
// SAS was shown count for nothing.
func (a *app) runCall(ctx context.Context, call *sdk.Call, f *callFlags, out *eventPrinter) error {
	var timeout <-chan time.Time
	if *f.dur > 0 {
		t := time.NewTimer(*f.dur)
		defer t.Stop()
		timeout = t.C
	}
	if a.in == nil {
		a.in = bufio.NewReader(a.stdin)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(a.in)
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
				// The SAS may have been printed just before: select
				// picks among ready cases at random.
				select {
				case <-secure:
					secure, shown = nil, true
				default:
					continue
				}
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
				fmt.Fprintf(a.stderr, "%s: %v\n", prog, err)
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
func (a *app) cmdVerifyCall(ctx context.Context, args []string) error {
	c := a.newCommon("verify-call", verifyCallSynopsis)
	cacheDir := c.String("zrtp-cache", "", "for calls made without a profile: the --zrtp-cache directory they used (default ~/.phonex/zrtp)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return cli.Misuse(verifyCallSynopsis, "verify-call takes the peer (its ZID or SIP address) and the SAS words")
	}
	out := &eventPrinter{stdout: a.stdout, stderr: a.stderr, json: *c.jsonOut}
	store, done, err := a.zrtpStore(ctx, c.Flags, *c.profile, *c.pwFile, *cacheDir, out)
	if err != nil {
		return err
	}
	defer done()
	who, words := pos[0], strings.Join(pos[1:], " ")
	res, err := store.ConfirmLastCall(who, words)
	if err != nil {
		return fmt.Errorf("verify-call: %w", err)
	}
	v := map[string]any{"event": "sas_verified", "peer": res.Peer, "peer_zid": res.PeerZID, "sas": res.SAS,
		"call_time": res.At.UTC().Format(time.RFC3339), "unsafe": res.Unsafe}
	if res.MessagingVerified != "" {
		v["messaging_verified"] = res.MessagingVerified
	}
	return c.print(v, func(w io.Writer) {
		if res.Unsafe {
			fmt.Fprintf(w, "The call with %s at %s was UNSAFE: a retained-secret mismatch, or the peer was marked unsafe before (a man in the middle, or the peer lost its ZRTP cache).\n",
				res.Peer, res.At.Local().Format(time.DateTime))
			fmt.Fprintln(w, "You confirmed that the peer read the same SAS, so that call's secret is kept.")
		}
		fmt.Fprintf(w, "SAS %q confirmed: %s (ZID %s) is verified; later calls show \"previously verified\".\n", res.SAS, res.Peer, res.PeerZID)
		if res.MessagingVerified != "" {
			fmt.Fprintf(w, "The messaging identity of %s, bound into that call, is verified too.\n", res.MessagingVerified)
		}
	})
}

// iceServerList reads --ice-server, --turn-user and the TURN password
// (PHONEX_TURN_PASSWORD or --turn-password-file; never a flag value, which
// other users of the machine could read).
func (f *callFlags) iceServerList(a *app) (sdk.ICEServers, error) {
	var s sdk.ICEServers
	for _, u := range strings.Split(*f.iceServers, ",") {
		if u = strings.TrimSpace(u); u != "" {
			s.URLs = append(s.URLs, u)
		}
	}
	s.Username = *f.turnUser
	if *f.turnPassFile != "" {
		b, err := os.ReadFile(*f.turnPassFile)
		if err != nil {
			return s, fmt.Errorf("--turn-password-file: %w", err)
		}
		s.Password, _, _ = strings.Cut(strings.TrimRight(string(b), "\r\n"), "\n")
	} else {
		s.Password = a.getenv("PHONEX_TURN_PASSWORD")
	}
	if s.Username != "" && len(s.URLs) == 0 {
		return s, cli.Misuse(f.Usage(), "--turn-user without --ice-server")
	}
	return s, nil
}
