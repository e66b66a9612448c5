package sipua

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/phonex/phonex/internal/media"
	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/srtp"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/zrtp"
)

// Errors a call ends with that callers branch on.
var (
	// ErrNoZRTP: the peer signalled no zrtp-hash and sent no ZRTP Hello.
	ErrNoZRTP = errors.New("the peer does not speak ZRTP: no a=zrtp-hash and no ZRTP Hello; the call is not encrypted end to end (use --allow-insecure only if you accept that)")
	// ErrZRTPFailed: the ZRTP exchange ended without keys.
	ErrZRTPFailed = errors.New("ZRTP key agreement failed")
	// ErrEqualZID: both ends have the same ZID (RFC 6189 §4.2 requires
	// them to differ), nearly always because they share one ZRTP cache.
	ErrEqualZID = errors.New("both ends have the same ZRTP identity (ZID), so they share one ZRTP cache: give each end its own profile (--profile DIR), or for calls without a profile its own --zrtp-cache DIR")
)

// CallOptions configure one call.
type CallOptions struct {
	// Play is sent to the peer, then silence; nil means silence.
	Play *wav.Audio
	// Record names a WAV file that receives what the peer sends.
	Record string
	// Cache keeps our ZID, the peers' retained secrets and the SAS of
	// the last call with each. Required.
	Cache SecretStore
	// ZRTP preference lists; nil means the zrtp package's defaults.
	KeyAgreements, SASTypes, Hashes, Ciphers, AuthTags []zrtp.Algo
	// AllowInsecure lets a call to a peer without ZRTP go on (with an
	// alert) instead of failing. No media is sent in the clear either way.
	AllowInsecure bool
	// SAVP offers RTP/SAVP instead of RTP/AVP; ZRTP works with both
	// (RFC 6189 §12), most ZRTP endpoints offer RTP/AVP.
	SAVP bool
	// NoOpus leaves Opus out of the offer and the answer.
	NoOpus bool
	// OpusBitrate (bits/s, 8000 to 24000; 0 means BudgetBitrate for PTime
	// and the SRTP tag ZRTP agrees) and PTime (20, 40, 60, 80, 100 or 120
	// ms) set what this side sends. The defaults, 22 kbit/s in 120 ms
	// packets with HS32 tags, keep one direction within the seed's budget
	// of 8 to 20 kbit/s at the IP level on speech (19.9 kbit/s with IP,
	// UDP, RTP and SRTP headers) with the best quality found in that budget,
	// clean and under loss (bench/media/quality.sh); the price is about
	// 120 ms more delay than 60 ms packets (docs/calls.md).
	OpusBitrate int
	PTime       time.Duration
	// HelloTimeout is how long to wait for a ZRTP Hello from a peer that
	// signalled no zrtp-hash; 0 means 3 s.
	HelloTimeout time.Duration
	// RTPHost is the local address for RTP; "" means the SIP address.
	RTPHost string
	// ICE configures the media path (icecall.go).
	ICE ICEOptions
	// Signer signs our zrtp-hash with the device's identity key and checks
	// the peer's against its pinned certificate (hashsig.go); nil for a
	// call without a profile, which neither signs nor checks.
	Signer Signer
	// OnEvent receives the call's events in order; it must not block long.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// Call is one direct call: its SIP dialog and its media session.
type Call struct {
	ua       *UA
	opts     CallOptions
	log      *slog.Logger
	outgoing bool
	callID   string

	cdlg *sipgo.DialogClientSession
	sdlg *sipgo.DialogServerSession

	conn    mediaTransport
	engine  *zrtp.Engine
	ssrc    uint32
	zid     zrtp.ZID
	evMu    sync.Mutex
	sigMu   sync.Mutex // guards local, remote, codec
	local   Media
	remote  *Media
	codec   Codec
	ctrl    chan func(*mediaState)
	ended   chan struct{}
	endOnce sync.Once
	endErr  error
	reason  string
	runMu   sync.Mutex // guards cancel, ending and the failure
	cancel  context.CancelFunc
	ending  bool
	// failReason and failErr: why the call failed, once it started to
	// end on a failure.
	failReason string
	failErr    error
	loopWG     sync.WaitGroup

	statsMu sync.Mutex
	stats   Stats
	secure  *SecureInfo
	peerZID zrtp.ZID

	verifyMu     sync.Mutex
	userVerified bool
	sasRejected  bool
	opusMissing  bool
	// autoBitrate: no OpusBitrate was asked for, so the budget of the
	// packet time and SRTP tag applies.
	autoBitrate bool
	peer        string // SIP address of the peer, as shown

	// iceDefault is the default candidate of our ICE description.
	iceDefault netip.AddrPort

	trust callTrust // signed zrtp-hash and identity binding (calltrust.go)
}

func newCall(ua *UA, opts CallOptions, outgoing bool) (*Call, error) {
	if opts.Cache == nil {
		return nil, errors.New("call: no ZRTP cache given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zid, err := opts.Cache.ZID()
	if err != nil {
		return nil, fmt.Errorf("call: ZRTP identity: %w", err)
	}
	host := opts.RTPHost
	if host == "" {
		host = ua.host
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("call: RTP address %q: %w", host, err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("call: open RTP socket: %w", err)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("call: SSRC: %w", err)
	}
	c := &Call{ua: ua, opts: opts, log: log, outgoing: outgoing, conn: udpTransport{conn}, zid: zid,
		ssrc: binary.BigEndian.Uint32(b[:]), ctrl: make(chan func(*mediaState), 8), ended: make(chan struct{})}
	c.engine, err = zrtp.New(zrtp.Config{
		ZID: zid, SSRC: c.ssrc, Cache: zrtpCache{opts.Cache},
		Hashes: opts.Hashes, Ciphers: opts.Ciphers, AuthTags: opts.AuthTags,
		KeyAgreements: opts.KeyAgreements, SASTypes: opts.SASTypes,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("call: ZRTP: %w", err)
	}
	codecs := []Codec{CodecOpus, CodecPCMU, CodecPCMA, CodecTelephoneEvent, CodecRED}
	if opts.NoOpus || !opusAvailable() {
		codecs = codecs[1:4] // red is offered over Opus only
	}
	proto := ProtoAVP
	if opts.SAVP {
		proto = ProtoSAVP
	}
	sid := uint64(time.Now().UnixNano() & 0x7fffffffffff)
	if opts.PTime == 0 {
		c.opts.PTime = DefaultPTime
	}
	if opts.OpusBitrate == 0 {
		// The tag is known once ZRTP is done (onSecure); until then, the
		// one we prefer.
		c.opts.OpusBitrate = BudgetBitrate(c.opts.PTime, zrtp.HS32)
		c.autoBitrate = true
	}
	if p := c.opts.PTime; p%(20*time.Millisecond) != 0 || p < 20*time.Millisecond || p > 120*time.Millisecond {
		conn.Close()
		return nil, fmt.Errorf("call: packet time %v: use 20, 40, 60, 80, 100 or 120ms", p)
	}
	if b := c.opts.OpusBitrate; b < 8000 || b > MaxOpusBitrate {
		conn.Close()
		return nil, fmt.Errorf("call: Opus bitrate %d: use 8000 to %d", b, MaxOpusBitrate)
	}
	if !opts.NoOpus && !opusAvailable() {
		c.opusMissing = true
	}
	if c.opusMissing {
		c.emit(Event{Type: EventWarning, Reason: "Opus is unavailable (" + codec.OpusUnavailableReason() + "): offering G.711 (PCMU, PCMA) only; install libopus0 for Opus"})
	}
	c.local = Media{Addr: ip, Port: conn.LocalAddr().(*net.UDPAddr).Port, Proto: proto, Codecs: codecs,
		Direction: SendRecv, ZRTPHash: c.engine.HelloHash(), SessionID: sid, Version: sid, PTime: c.opts.PTime,
		RTCPMux: true}
	return c, nil
}

func opusAvailable() bool {
	o, err := codec.NewOpus(codec.OpusConfig{})
	if err != nil {
		return false
	}
	o.Close()
	return true
}

func (c *Call) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
}

func (c *Call) alert(format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	c.log.Warn("call alert", "reason", reason)
	c.emit(Event{Type: EventAlert, Reason: reason})
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.ended }

// Err is why the call ended: nil for a normal hang-up.
func (c *Call) Err() error {
	select {
	case <-c.ended:
		return c.endErr
	default:
		return nil
	}
}

// Secure returns the key agreement's outcome, or nil before it.
func (c *Call) Secure() *SecureInfo {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if c.secure == nil {
		return nil
	}
	s := *c.secure
	return &s
}

// Stats returns the media counters so far.
func (c *Call) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

// Wait blocks until the call ends or ctx is done.
func (c *Call) Wait(ctx context.Context) error {
	select {
	case <-c.ended:
		return c.endErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hangup sends BYE and ends the call.
func (c *Call) Hangup(ctx context.Context) error {
	select {
	case <-c.ended:
		return c.endErr
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if c.cdlg != nil {
		err = c.cdlg.Bye(ctx)
	} else if c.sdlg != nil {
		err = c.sdlg.Bye(ctx)
	}
	if err != nil {
		err = fmt.Errorf("hang up: %w", err)
		c.log.Debug("BYE", "err", err)
	}
	c.end("local hangup", nil)
	return nil
}

// ConfirmSAS records that the user compared the SAS with the peer during
// this call and found it equal; later calls to this peer report
// previously_verified. After a retained-secret mismatch it is also what
// lets the new secret be kept (RFC 6189 §4.6.1.1).
func (c *Call) ConfirmSAS() error {
	s := c.Secure()
	if s == nil {
		return errors.New("confirm SAS: the call is not secure yet")
	}
	c.statsMu.Lock()
	peer := c.peerZID
	c.statsMu.Unlock()
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	c.userVerified, c.sasRejected = true, false
	dev, err := confirmInCall(c.opts.Cache, peer, s.SAS)
	if err != nil {
		return err
	}
	reason := "SAS " + s.SAS + " confirmed for peer " + s.PeerZID
	if dev != "" {
		reason += "; the messaging identity of " + dev + " is verified too"
	}
	if s.Trust == TrustUnsafe {
		reason += "; this call had a retained-secret mismatch (unsafe): its new secret is kept now"
	}
	c.emit(Event{Type: EventSASVerified, Reason: reason})
	return nil
}

// RejectSAS records that the peer read a different SAS: a man in the
// middle. The peer is marked unsafe and the call's secret is not kept;
// hang up.
func (c *Call) RejectSAS() error {
	s := c.Secure()
	if s == nil {
		return errors.New("reject SAS: the call is not secure yet")
	}
	c.statsMu.Lock()
	peer := c.peerZID
	c.statsMu.Unlock()
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	c.userVerified, c.sasRejected = false, true
	if err := reject(c.opts.Cache, peer); err != nil {
		return err
	}
	c.alert("you found the SAS different from the peer's: possibly a man in the middle; the peer is marked unsafe, hang up")
	return nil
}

// end stops the media and reports the ended event once.
func (c *Call) end(reason string, err error) {
	c.endOnce.Do(func() {
		// A BYE may end the call while Dial or Accept still starts the
		// media: after this, startMedia starts nothing.
		c.runMu.Lock()
		c.ending = true
		cancel := c.cancel
		if c.failErr != nil || c.failReason != "" {
			reason, err = c.failReason, c.failErr
		}
		conn := c.conn // selectTransport may replace it: under runMu
		c.runMu.Unlock()
		if cancel != nil {
			cancel()
		}
		conn.Close()
		c.loopWG.Wait()
		c.reason, c.endErr = reason, err
		if err != nil && reason == "" {
			c.reason = err.Error()
		}
		c.ua.forget(c)
		st := c.Stats()
		c.emit(Event{Type: EventEnded, Reason: c.reason, Stats: &st})
		close(c.ended)
	})
}

// packet is one datagram from the RTP socket.
type packet struct {
	b    []byte
	from netip.AddrPort
	at   time.Time
}

// mediaState belongs to the media goroutine.
type mediaState struct {
	peer       netip.AddrPort
	remoteHash string
	held       bool
	helloWait  time.Time // when to give up on a peer without zrtp-hash
	zrtpSeen   bool
	hashAlert  bool
	started    time.Time

	sendCodec, recvCodec codec.Codec
	session              *srtp.Session
	sender               *media.Sender
	receiver             *media.Receiver
	sendReady            bool
	srtpAuthed           bool
	play                 []int16
	playRate             int
	frameIn              int // input samples per frame
	pkt                  []byte
	pcm                  []int16
	rec                  *wav.Writer
	recFile              *os.File

	// rtcpMux: the peer takes RTCP on its RTP port (RFC 5761), so our
	// receiver reports go there; nextRTCP is when the next one is due.
	rtcpMux  bool
	nextRTCP time.Time
	rtcpBuf  []byte
	// sendClock is the media time of the next frame to send.
	sendClock time.Time
	// red is redundant audio, when both sides offered it (callred.go).
	red *redundancy
}

// maxCatchUp bounds the frames sent at once after the process ran late;
// after a longer stall the stream resumes from now.
const maxCatchUp = 5

// startMedia starts the media goroutines once the codec and the peer's
// address are known.
func (c *Call) startMedia(parent context.Context) error {
	c.sigMu.Lock()
	remote, chosen, local := *c.remote, c.codec, c.local
	c.sigMu.Unlock()
	if err := c.selectTransport(parent, &remote); err != nil {
		return err
	}
	st := &mediaState{peer: netip.AddrPortFrom(remote.Addr.Unmap(), uint16(remote.Port)), held: remote.OnHold(), remoteHash: remote.ZRTPHash,
		rtcpMux: remote.RTCPMux}
	var err error
	// We send in our packet time; the peer sends in its own, 20 ms when
	// its description does not say (RFC 7587 §4, RFC 3551 §4.5).
	recvPTime := remote.PTime
	if recvPTime == 0 {
		recvPTime = 20 * time.Millisecond
	}
	if st.sendCodec, err = newCodec(chosen, c.opts.PTime, c.opts.OpusBitrate); err != nil {
		return err
	}
	if st.recvCodec, err = newCodec(chosen, recvPTime, c.opts.OpusBitrate); err != nil {
		st.sendCodec.Close()
		return err
	}
	c.setupRedundancy(st, &local, &remote, chosen)
	set := SendSettings{Codec: chosen.Name, PTimeMS: int(st.sendCodec.FrameDuration() / time.Millisecond), Redundancy: st.red != nil}
	if o, ok := st.sendCodec.(*codec.Opus); ok {
		cfg := o.Settings()
		set.BitrateBPS, set.Bandwidth, set.FEC, set.LossHint = cfg.Bitrate, cfg.MaxBandwidth.String(), cfg.FEC, cfg.PacketLoss
		if cfg.Complexity != nil {
			set.Complexity = *cfg.Complexity
		}
	}
	c.statsMu.Lock()
	c.stats.Send = set
	c.statsMu.Unlock()
	if c.opts.Record != "" {
		f, err := os.Create(c.opts.Record)
		if err != nil {
			return fmt.Errorf("call: record: %w", err)
		}
		if st.rec, err = wav.NewWriter(f, st.recvCodec.SampleRate()); err != nil {
			f.Close()
			return fmt.Errorf("call: record: %w", err)
		}
		st.recFile = f
	}
	st.playRate = st.sendCodec.SampleRate()
	if c.opts.Play != nil {
		st.play, st.playRate = c.opts.Play.Samples, c.opts.Play.SampleRate
	}
	st.frameIn = int(int64(st.playRate) * int64(st.sendCodec.FrameDuration()) / int64(time.Second))
	if remote.ZRTPHash == "" {
		to := c.opts.HelloTimeout
		if to == 0 {
			to = 3 * time.Second
		}
		st.helloWait = time.Now().Add(to)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if c.ending {
		cancel()
		st.close()
		return errors.New("call: ended before the media started")
	}
	c.cancel = cancel
	pkts := make(chan packet, 64)
	c.loopWG.Add(2)
	go c.readLoop(pkts)
	go c.mediaLoop(ctx, st, pkts)
	return nil
}

// Defaults of what a call sends: measured best within 20 kbit/s one way
// at the IP level, clean and at 5 % loss (docs/calls.md "Audio quality").
// MaxOpusBitrate bounds the option: 24 kbit/s in 120 ms packets is about
// 21.2 kbit/s at the IP level with HS32.
const (
	DefaultPTime       = 120 * time.Millisecond
	DefaultOpusBitrate = 22000
	MaxOpusBitrate     = 24000
)

// BudgetBitrate is the Opus bitrate that keeps one direction within 20
// kbit/s at the IP level on speech for a packet time and SRTP tag
// (zrtp.HS32, which calls prefer, or zrtp.HS80), headers included (IPv4,
// UDP and RTP take 40 bytes a packet, the tag 4 or 10), in the mediumband
// calls send (newCodec). Measured with bench/media/quality -sim
// -bandwidth mediumband -tag TAG on the speech of bench/media/quality.sh,
// averaged over the speech file, pauses included: with HS32, 22 kbit/s in
// 120 ms packets gives 19.9 kbit/s, 20 in 100 ms 19.8, 19 in 80 ms 20.0,
// 17.5 in 60 ms 19.8, 12.5 in 40 ms 19.5; HS80 costs 0.5 to 1 kbit/s of
// Opus at each. In 20 ms packets the headers alone take 17.6 to 20 kbit/s:
// it gives the lowest rate accepted.
func BudgetBitrate(ptime time.Duration, tag zrtp.Algo) int {
	hs80 := tag == zrtp.HS80
	pick := func(hs32, hs80Rate int) int {
		if hs80 {
			return hs80Rate
		}
		return hs32
	}
	switch {
	case ptime >= 120*time.Millisecond:
		return pick(22000, 21500)
	case ptime >= 100*time.Millisecond:
		return pick(20000, 19500)
	case ptime >= 80*time.Millisecond:
		return pick(19000, 18000)
	case ptime >= 60*time.Millisecond:
		return pick(17500, 16500)
	case ptime >= 40*time.Millisecond:
		return pick(12500, 11500)
	}
	return 8000
}

func newCodec(c Codec, ptime time.Duration, bitrate int) (codec.Codec, error) {
	switch strings.ToLower(c.Name) {
	case "opus":
		// Mediumband (6 kHz) and no in-band FEC of our own: within the
		// 20 kbit/s budget the bits the 6-8 kHz band and the FEC copies
		// would take serve the rest of the band better. Wideband PESQ of
		// the speech of bench/media/quality.sh, ten loss seeds: 3.94
		// clean and 2.97 at 5 % loss against 3.84 and 2.76 in wideband
		// with FEC (libopus 1.3.1 switches FEC on at 5 % reported loss in
		// mediumband and then scores 2.75; docs/calls.md "Audio
		// quality"). The peer may still send us FEC, which the receiver
		// uses (RFC 7587 §6.1, useinbandfec=1 in our fmtp); the expected
		// loss the peer reports still makes our frames more robust
		// (Sender.Adapt).
		o, err := codec.NewOpus(codec.OpusConfig{PayloadType: c.PT, Frame: ptime, Bitrate: bitrate, MaxBandwidth: codec.BandwidthMediumband})
		if err != nil {
			return nil, fmt.Errorf("call: Opus: %w", err)
		}
		return o, nil
	case "pcmu":
		return codec.NewPCMU(ptime)
	case "pcma":
		return codec.NewPCMA(ptime)
	}
	return nil, fmt.Errorf("call: codec %s: %w", c, ErrNoCodec)
}

func (c *Call) readLoop(out chan<- packet) {
	defer c.loopWG.Done()
	defer close(out)
	buf := make([]byte, 2048)
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Debug("RTP read", "err", err)
			}
			return
		}
		p := packet{b: bytes.Clone(buf[:n]), from: from, at: time.Now()}
		select {
		case out <- p:
		default: // the media loop is behind: drop, as the network might
		}
	}
}

func (c *Call) mediaLoop(ctx context.Context, st *mediaState, pkts <-chan packet) {
	defer c.loopWG.Done()
	defer st.close()
	now := time.Now()
	st.started = now
	c.zrtpResult(st, now, c.engine.Start(now))
	frame := st.sendCodec.FrameDuration()
	ticker := time.NewTicker(frame)
	defer ticker.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var zc <-chan time.Time
		if nt := c.engine.NextTimeout(); !nt.IsZero() {
			timer.Reset(time.Until(nt))
			zc = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case p, ok := <-pkts:
			if !ok {
				return
			}
			c.onPacket(st, p)
		case now := <-ticker.C:
			c.onTick(st, now)
		case now := <-zc:
			c.zrtpResult(st, now, c.engine.HandleTimeout(now))
		case f := <-c.ctrl:
			f(st)
		}
	}
}

func (st *mediaState) close() {
	if st.rec != nil {
		st.rec.Close()
		st.recFile.Close()
	}
	if st.session != nil {
		st.session.Close()
	}
	st.sendCodec.Close()
	st.recvCodec.Close()
	st.closeRedundancy()
}

// failAsync ends the call from the media goroutine without waiting for it.
func (c *Call) failAsync(reason string, err error) {
	// The peer may hang up too (both ends saw the same failure) and its
	// BYE may end the call first: the failure must still be the reason.
	c.runMu.Lock()
	if c.failErr == nil && c.failReason == "" {
		c.failReason, c.failErr = reason, err
	}
	c.runMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if c.cdlg != nil {
			_ = c.cdlg.Bye(ctx)
		} else if c.sdlg != nil {
			_ = c.sdlg.Bye(ctx)
		}
		c.end(reason, err)
	}()
}

func (c *Call) send(st *mediaState, b []byte) {
	if err := c.conn.WriteTo(b, st.peer); err != nil {
		c.log.Debug("RTP send", "err", err)
	}
}

func (c *Call) onPacket(st *mediaState, p packet) {
	b := p.b
	switch {
	case zrtp.IsZRTP(b):
		c.statsMu.Lock()
		c.stats.ZRTPReceived++
		c.statsMu.Unlock()
		st.zrtpSeen = true
		hash := st.remoteHash
		if hash != "" && len(b) >= 24 && string(b[16:24]) == "Hello   " {
			if _, _, msg, err := zrtp.ParsePacket(b); err == nil {
				// RFC 6189 §8.1: a Hello that does not match the
				// signalled hash is dropped.
				if err := zrtp.CheckHelloHash(hash, msg); err != nil {
					if !st.hashAlert {
						st.hashAlert = true
						c.alert("the peer's ZRTP Hello does not match the a=zrtp-hash in its SDP: dropped (possible man in the middle)")
					}
					return
				}
			}
		}
		res, err := c.engine.HandlePacket(p.at, b)
		if err != nil {
			c.log.Debug("ZRTP packet dropped", "err", err)
		}
		c.zrtpResult(st, p.at, res)
	case len(b) >= 12 && b[0]>>6 == 2:
		// RTCP shares the port (RFC 5761): its packet types 200-204
		// cannot be RTP payload types (§4). The peer's receiver reports
		// on our stream tune our encoder to the loss it sees.
		if b[1] >= 192 && b[1] <= 223 {
			c.onRTCP(st, b)
			return
		}
		if st.receiver == nil {
			return // before keys: nothing can authenticate it
		}
		if err := st.receiver.Receive(p.at, b); err != nil {
			c.log.Debug("SRTP packet dropped", "err", err)
			return
		}
		if !st.srtpAuthed {
			st.srtpAuthed = true
			st.sendReady = true
			if c.engine.Secure() {
				c.zrtpResult(st, p.at, c.engine.SRTPAuthenticated(p.at))
			}
		}
		c.updateStats(st)
	}
}

func (c *Call) onRTCP(st *mediaState, b []byte) {
	if st.sender == nil {
		return // before keys: nothing can authenticate it
	}
	blocks, err := st.sender.HandleRTCP(b)
	if err != nil {
		c.log.Debug("SRTCP packet dropped", "err", err)
		return
	}
	c.statsMu.Lock()
	c.stats.RTCPReceived++
	c.statsMu.Unlock()
	for _, bl := range blocks {
		st.sender.Adapt(bl)
	}
}

// rtcpInterval is the mean interval between our receiver reports. RFC
// 3550 §6.2 keeps RTCP near 5 % of the session bandwidth: one compound
// report over SRTCP (about 90 bytes with IP headers) every 2 s is 0.4
// kbit/s, 2 % of a 20 kbit/s direction, and lets the peer's encoder
// react to loss within seconds.
const rtcpInterval = 2 * time.Second

// sendRTCP sends a receiver report when one is due, at intervals drawn
// from [0.5, 1.5] times rtcpInterval so that the two ends do not
// synchronise (RFC 3550 §6.3.1).
func (c *Call) sendRTCP(st *mediaState, now time.Time) {
	if !st.rtcpMux || st.receiver == nil || st.held || now.Before(st.nextRTCP) {
		return
	}
	pkt, ok, err := st.receiver.RTCPReport(st.rtcpBuf[:0])
	if err != nil {
		c.log.Debug("RTCP report", "err", err)
		return
	}
	if !ok {
		return // nothing received yet
	}
	var r [2]byte
	_, _ = rand.Read(r[:])
	st.nextRTCP = now.Add(rtcpInterval/2 + time.Duration(binary.BigEndian.Uint16(r[:]))*rtcpInterval/65536)
	st.rtcpBuf = pkt
	c.send(st, pkt)
	c.statsMu.Lock()
	c.stats.RTCPSent++
	c.statsMu.Unlock()
}

func (c *Call) updateStats(st *mediaState) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if st.sender != nil {
		s := st.sender.Stats()
		c.stats.PacketsSent, c.stats.BytesSent = s.Packets, s.Bytes
		c.stats.SendIPKbps = s.IPBitrate() / 1000
		c.stats.PeerLossPercent = s.PeerLoss
		c.stats.PeerJitterMS = float64(s.PeerJitter) / float64(time.Millisecond)
		c.stats.Send.LossHint = s.LossHint
		c.stats.RedundantSent = s.Redundant
		if o, ok := st.sendCodec.(*codec.Opus); ok {
			c.stats.Send.BitrateBPS = o.Settings().Bitrate // lowered while redundancy is on
		}
	}
	if st.receiver != nil {
		r := st.receiver.Stats()
		c.stats.PacketsReceived, c.stats.BytesReceived = r.Packets, r.Bytes
		c.stats.Lost, c.stats.AuthFailures = r.Lost, r.AuthFailures
		c.stats.FECRecovered, c.stats.Concealed, c.stats.Bridged = r.FECRecovered, r.Concealed, r.Bridged
		c.stats.RedRecovered = r.RedRecovered
		lost, expected, jitter := st.receiver.Reception()
		c.stats.LostPackets = lost
		if expected > 0 {
			c.stats.LossPercent = max(float64(lost), 0) * 100 / float64(expected)
		}
		c.stats.JitterMS = float64(jitter) / float64(time.Millisecond)
		c.stats.RecvPTimeMS = int(r.PacketTime / time.Millisecond)
		c.stats.PlayoutDelayMS = int(r.PlayoutDelay / time.Millisecond)
		c.stats.DelayMS = c.stats.RecvPTimeMS + c.stats.PlayoutDelayMS
	}
}

func (c *Call) onTick(st *mediaState, now time.Time) {
	if !st.helloWait.IsZero() && !st.zrtpSeen && now.After(st.helloWait) {
		st.helloWait = time.Time{}
		if !c.opts.AllowInsecure {
			c.failAsync("", ErrNoZRTP)
			return
		}
		c.alert("the peer does not speak ZRTP: the call is NOT encrypted and no audio is sent or played (media is never sent in the clear)")
	}
	if st.sender != nil && st.sendReady && !st.held {
		// Frames go out on the media clock: the ticker drops ticks when
		// the process runs late, and a frame per tick would then stretch
		// the stream and starve the peer's jitter buffer.
		frame := st.sendCodec.FrameDuration()
		if st.sendClock.IsZero() || now.Sub(st.sendClock) > maxCatchUp*frame {
			st.sendClock = now.Add(-frame) // start, or restart after a long stall
		}
		for ; !st.sendClock.After(now.Add(-frame)); st.sendClock = st.sendClock.Add(frame) {
			in := st.frameIn
			if len(st.play) > 0 {
				n := min(in, len(st.play))
				st.sender.Write(st.play[:n])
				st.play = st.play[n:]
				in -= n
			}
			if in > 0 {
				st.sender.Write(make([]int16, in))
			}
		}
		for st.sender.Pending() > 0 {
			pkt, ok, err := st.sender.Packet(st.pkt[:0])
			if err != nil {
				c.log.Warn("encode", "err", err)
				break
			}
			if !ok {
				break
			}
			st.pkt = pkt
			c.send(st, pkt)
		}
	}
	if st.receiver != nil {
		var err error
		if st.pcm, err = st.receiver.Play(now, st.pcm[:0]); err != nil {
			c.log.Debug("play", "err", err)
		}
		if st.rec != nil && len(st.pcm) > 0 {
			if err := st.rec.Write(st.pcm); err != nil {
				c.log.Warn("record", "err", err)
				st.rec.Close()
				st.recFile.Close()
				st.rec = nil
			}
		}
	}
	c.sendRTCP(st, now)
	c.updateStats(st)
}

// zrtpResult sends the engine's packets and acts on its events.
func (c *Call) zrtpResult(st *mediaState, now time.Time, res zrtp.Result) {
	for _, p := range res.Packets {
		c.send(st, p)
	}
	if n := len(res.Packets); n > 0 {
		c.statsMu.Lock()
		c.stats.ZRTPSent += uint64(n)
		c.statsMu.Unlock()
	}
	for _, ev := range res.Events {
		switch ev := ev.(type) {
		case *zrtp.Secure:
			if err := c.onSecure(st, now, ev); err != nil {
				c.failAsync("", err)
				return
			}
		case *zrtp.Retain:
			c.onRetain(ev)
			st.sendReady = true
		case *zrtp.Failed:
			var ze *zrtp.Error
			if errors.As(ev.Err, &ze) && ze.Code == zrtp.CodeEqualZID {
				c.failAsync("", fmt.Errorf("%w: %w", ErrZRTPFailed, ErrEqualZID))
				return
			}
			c.failAsync("", fmt.Errorf("%w: %v", ErrZRTPFailed, ev.Err))
			return
		case *zrtp.GoClearRefused:
			c.alert("the peer asked to stop encrypting (GoClear); refused, the call stays encrypted")
		}
	}
	// The initiator may send SRTP once Confirm2 is acknowledged (RFC 6189
	// §4.6); an idle retransmission timer after the keys means Conf2ACK
	// arrived.
	if st.session != nil && !st.sendReady && c.engine.NextTimeout().IsZero() {
		st.sendReady = true
	}
}

func (c *Call) onSecure(st *mediaState, now time.Time, ev *zrtp.Secure) error {
	local := srtp.Keys{MasterKey: ev.Keys.ResponderKey, MasterSalt: ev.Keys.ResponderSalt}
	remote := srtp.Keys{MasterKey: ev.Keys.InitiatorKey, MasterSalt: ev.Keys.InitiatorSalt}
	if ev.Initiator {
		local, remote = remote, local
	}
	sess, err := srtp.NewSession(srtp.Config{Cipher: ev.Cipher.String(), AuthTag: ev.AuthTag.String(), Local: local, Remote: remote})
	if err != nil {
		return fmt.Errorf("call: SRTP: %w", err)
	}
	st.session = sess
	bitrate := c.opts.OpusBitrate
	if c.autoBitrate && ev.AuthTag != zrtp.HS32 {
		// The peer chose the longer tag: leave it the bytes.
		if bs, ok := st.sendCodec.(interface{ SetBitrate(int) error }); ok {
			bitrate = BudgetBitrate(c.opts.PTime, ev.AuthTag)
			if err := bs.SetBitrate(bitrate); err != nil {
				return fmt.Errorf("call: Opus bitrate for %s: %w", ev.AuthTag, err)
			}
		}
	}
	ssrc := binary.BigEndian.AppendUint32(nil, c.ssrc)
	st.sender, err = media.NewSender(media.SenderConfig{Codec: st.sendCodec, SRTP: sess, InputRate: st.playRate,
		// The RTP SSRC must be the one ZRTP announced (RFC 6189 §5).
		Rand: ioMulti(ssrc), Redundancy: st.sendRedundancy(bitrate)})
	if err != nil {
		return fmt.Errorf("call: sender: %w", err)
	}
	// Our reports carry the SSRC we send with (RFC 3550 §6.4.2).
	st.receiver, err = media.NewReceiver(media.ReceiverConfig{Codec: st.recvCodec, SRTP: sess, SSRC: c.ssrc, Redundancy: st.recvRedundancy()})
	if err != nil {
		return fmt.Errorf("call: receiver: %w", err)
	}
	st.sendReady = !ev.Initiator
	flagged, err := c.rememberCall(ev, now)
	if err != nil {
		c.log.Warn("ZRTP cache", "err", err)
	}
	trust := TrustUnverified
	switch {
	case ev.CacheMismatch || flagged:
		trust = TrustUnsafe
	case ev.PreviouslyVerified:
		trust = TrustVerified
	}
	info := &SecureInfo{
		SAS: ev.SAS, SASType: strings.TrimSpace(ev.SASType.String()), Cipher: ev.Cipher.String(),
		Hash: ev.Hash.String(), KeyAgreement: ev.KeyAgreement.String(), AuthTag: ev.AuthTag.String(),
		Trust: trust, PreviouslyVerified: ev.PreviouslyVerified, CacheMatched: ev.CacheMatched,
		PeerVerified: ev.PeerVerified, PeerZID: ev.PeerZID.String(), Initiator: ev.Initiator,
		Handshake: now.Sub(st.started),
	}
	c.fillTrust(info, ev, st)
	c.statsMu.Lock()
	c.secure, c.peerZID = info, ev.PeerZID
	c.statsMu.Unlock()
	c.emit(Event{Type: EventSecure, Secure: info})
	switch {
	case ev.CacheMismatch:
		c.alert("the peer's retained ZRTP secret does not match ours: this may be a man in the middle, or the peer lost its cache; compare the SAS aloud")
	case flagged:
		c.alert("this peer is marked unsafe (a retained-secret mismatch or a different SAS in an earlier call, never confirmed since); compare the SAS aloud")
	}
	return nil
}

// rememberCall keeps the SAS shown in this call, for confirming it later,
// and marks the peer unsafe after a retained-secret mismatch until the
// user confirms the SAS (RFC 6189 §4.3.2). flagged reports a peer marked
// unsafe by an earlier call and not confirmed since.
func (c *Call) rememberCall(ev *zrtp.Secure, now time.Time) (flagged bool, err error) {
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	r, _, err := c.opts.Cache.Peer(ev.PeerZID)
	if err != nil {
		return false, err
	}
	flagged = r.Unsafe
	r.Last = LastCall{Peer: c.peer, SAS: ev.SAS, SASType: strings.TrimSpace(ev.SASType.String()), At: now.UTC(),
		Unsafe: ev.CacheMismatch || flagged, Mismatch: ev.CacheMismatch}
	c.noteIdentity(&r.Last, ev)
	if ev.CacheMismatch {
		r.Unsafe, r.Verified = true, false
	}
	r.Updated = now.UTC()
	return flagged, c.opts.Cache.PutPeer(ev.PeerZID, r)
}

func (c *Call) onRetain(ev *zrtp.Retain) {
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	if err := c.retain(ev); err != nil {
		c.log.Warn("ZRTP cache", "err", err)
	}
}

// retain stores the new retained secret (RFC 6189 §4.6.1). After a cache
// mismatch it is kept back as pending until the user confirms the SAS
// (§4.6.1.1), during the call or afterwards.
func (c *Call) retain(ev *zrtp.Retain) error {
	r, _, err := c.opts.Cache.Peer(ev.PeerZID)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	r.Updated = now
	if ev.Expiry == 0 {
		// The peer asks us not to keep secrets (§4.9).
		r.RS1, r.RS2, r.Expires, r.Last.Pending = nil, nil, time.Time{}, nil
		return c.opts.Cache.PutPeer(ev.PeerZID, r)
	}
	if c.sasRejected {
		return nil // the user found the SAS different: keep nothing of this call
	}
	if ev.RequiresVerification && !c.userVerified {
		r.Last.Pending = &PendingSecret{RS1: ev.Record.RS1, RS2: ev.Record.RS2, Expires: expiryTime(now, ev.Expiry)}
		return c.opts.Cache.PutPeer(ev.PeerZID, r)
	}
	r.RS1, r.RS2, r.Expires = ev.Record.RS1, ev.Record.RS2, expiryTime(now, ev.Expiry)
	r.Verified = ev.Record.Verified || c.userVerified
	// An unsafe mark stays until the user confirms a SAS.
	r.Unsafe = r.Unsafe && !c.userVerified
	r.Last.Pending = nil
	return c.opts.Cache.PutPeer(ev.PeerZID, r)
}

// ioMulti returns a reader yielding first, then crypto randomness.
func ioMulti(first []byte) *multiReader { return &multiReader{first: first} }

type multiReader struct{ first []byte }

func (m *multiReader) Read(p []byte) (int, error) {
	if len(m.first) > 0 {
		n := copy(p, m.first)
		m.first = m.first[n:]
		return n, nil
	}
	return rand.Read(p)
}
