package relay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends pion's log lines to slog, all at debug level: they
// describe single packets and clients, which an operator wants only when
// looking for a problem, and they must not flood the log under attack.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("scope", "turn/"+scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) on() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

func (l pionLogger) logf(format string, a ...any) {
	if l.on() {
		l.log.Debug(fmt.Sprintf(format, a...))
	}
}

func (pionLogger) Trace(string)                {}
func (pionLogger) Tracef(string, ...any)       {}
func (l pionLogger) Debug(m string)            { l.logf("%s", m) }
func (l pionLogger) Debugf(f string, a ...any) { l.logf(f, a...) }
func (l pionLogger) Info(m string)             { l.logf("%s", m) }
func (l pionLogger) Infof(f string, a ...any)  { l.logf(f, a...) }
func (l pionLogger) Warn(m string)             { l.logf("%s", m) }
func (l pionLogger) Warnf(f string, a ...any)  { l.logf(f, a...) }
func (l pionLogger) Error(m string)            { l.logf("%s", m) }
func (l pionLogger) Errorf(f string, a ...any) { l.logf(f, a...) }
