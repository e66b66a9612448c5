package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sippLog is one SIPp watcher process's log: a line per NOTIFY with its
// arrival time (SIPp's [timestamp]) and call number.
type sippLog struct {
	target string
	path   string
	n      int
}

func parseSIPpLogs(specs []string) ([]sippLog, error) {
	var out []sippLog
	for _, s := range specs {
		target, rest, ok1 := strings.Cut(s, "=")
		path, num, ok2 := strings.Cut(rest, ":")
		n, err := strconv.Atoi(num)
		if !ok1 || !ok2 || err != nil {
			return nil, fmt.Errorf("-sipp-log %q: want TARGET=PATH:WATCHERS", s)
		}
		out = append(out, sippLog{target: target, path: path, n: n})
	}
	return out, nil
}

// arrivals returns, per call, the first NOTIFY that came after t0.
func (l sippLog) arrivals(t0 time.Time) (map[int]time.Time, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int]time.Time{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 5 || fs[0] != "notify" {
			continue
		}
		sec, err := strconv.ParseFloat(fs[3], 64)
		call, err2 := strconv.Atoi(fs[4])
		if err != nil || err2 != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if at.Before(t0) {
			continue
		}
		if _, seen := out[call]; !seen {
			out[call] = at
		}
	}
	return out, sc.Err()
}

// kamailioFanout publishes to each target over UDP and reads, from its
// SIPp watchers' log, when the NOTIFY reached the last of them.
func kamailioFanout(addr string, logs []sippLog, rounds int) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	host := addr[:strings.LastIndex(addr, ":")]
	for _, l := range logs {
		var times []time.Duration
		for r := range rounds {
			note := fmt.Sprintf("round-%d-%d", l.n, r)
			body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:%s@%s"><tuple id="p"><status><basic>open</basic></status><note>%s</note></tuple></presence>`,
				l.target, host, note)
			callID := fmt.Sprintf("pub-%s-%d-%d", l.target, r, time.Now().UnixNano())
			msg := fmt.Sprintf("PUBLISH sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nFrom: <sip:%s@%s>;tag=p\r\nTo: <sip:%s@%s>\r\n"+
				"Call-ID: %s\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\nEvent: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\nContent-Length: %d\r\n\r\n%s",
				l.target, addr, c.LocalAddr(), callID, l.target, host, l.target, host, callID, len(body), body)
			start := time.Now()
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
			buf := make([]byte, 4096)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
				return fmt.Errorf("PUBLISH to Kamailio: %q %v", buf[:n], err)
			}
			var got map[int]time.Time
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if got, err = l.arrivals(start); err != nil {
					return err
				}
				if len(got) >= l.n {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("kamailio %s round %d: %d of %d NOTIFYs", l.target, r, len(got), l.n)
				}
			}
			var last time.Time
			for _, at := range got {
				if at.After(last) {
					last = at
				}
			}
			times = append(times, last.Sub(start))
			time.Sleep(500 * time.Millisecond)
		}
		slices.Sort(times)
		med := times[len(times)/2]
		fmt.Printf("| Kamailio: one PUBLISH to the NOTIFY at the last of %d SIPp watchers over UDP (median of %d; min %v, max %v) | %.1f ms (%.0f NOTIFYs/s) |\n",
			l.n, rounds, times[0].Round(100*time.Microsecond), times[len(times)-1].Round(100*time.Microsecond),
			float64(med)/float64(time.Millisecond), float64(l.n)/med.Seconds())
	}
	return nil
}
