package alarm

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/node/config"
)

// Config holds the alarm options as written in the configuration; New
// parses and checks them.
type Config struct {
	// Alarms are `alarm = <name> <action>:<arg>` values. A name given
	// several times gets every action (all run for each incident).
	Alarms []string
	// LogRules are log-alarm and not-log-alarm values in declaration
	// order: a not-log-alarm only masks the rules declared after it.
	LogRules []LogRule
	// Backlog, Segfault and Harakiri name the alarms (`<alarm>[,<alarm>]`)
	// raised when a listen queue is full, a worker dies of SIGSEGV, and
	// harakiri kills a worker (alarm-harakiri is a gouwsgi extension:
	// uWSGI has no harakiri trigger).
	Backlog, Segfault, Harakiri []string
	// FD are `alarm-fd = <alarm> <fd>[:<nbytes>] <message>` values.
	FD []string
	// Cheap is alarm-cheap. It has no effect: log lines are always matched
	// and actions always run on the alarm goroutines, off the log path.
	Cheap bool
	// Freq is alarm-freq: an identical message of one alarm within Freq
	// of the incident that ran the action is a repeat, not a new incident.
	// 0 turns throttling off.
	Freq time.Duration
	// MsgSize is alarm-msg-size: longer messages are truncated with a
	// marker (uWSGI drops them silently).
	MsgSize int
	// Timeout bounds one try of an action (a curl: timeout option
	// overrides it for that action).
	Timeout time.Duration
	// Tries is how many times a failing action is run before giving up;
	// Backoff is the wait before the second try, doubled for each next.
	Tries   int
	Backoff time.Duration
}

// LogRule is one log-alarm (Negate false) or not-log-alarm (Negate true)
// value: `<alarm>[,<alarm>...] <regexp>`.
type LogRule struct {
	Negate bool
	Spec   string
}

// DefaultConfig returns uWSGI's defaults (alarm-freq 3 s, alarm-msg-size
// 8192) and gouwsgi's action bounds (30 s per try, 3 tries, 1 s back-off).
func DefaultConfig() Config {
	return Config{Freq: 3 * time.Second, MsgSize: 8192, Timeout: 30 * time.Second, Tries: 3, Backoff: time.Second}
}

// minMsgSize leaves room for the truncation marker.
const minMsgSize = 64

// Validate checks the numeric settings; New parses the rest.
func (c Config) Validate() error {
	var errs []error
	if c.Freq < 0 {
		errs = append(errs, fmt.Errorf("alarm-freq %s: must not be negative", c.Freq))
	}
	if c.MsgSize < minMsgSize {
		errs = append(errs, fmt.Errorf("alarm-msg-size %d: must be at least %d", c.MsgSize, minMsgSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("alarm action timeout %s: must be positive", c.Timeout))
	}
	if c.Tries < 1 {
		errs = append(errs, fmt.Errorf("alarm action tries %d: must be at least 1", c.Tries))
	}
	if c.Backoff < 0 {
		errs = append(errs, fmt.Errorf("alarm action back-off %s: must not be negative", c.Backoff))
	}
	return errors.Join(errs...)
}

// FromConfig collects the alarm options of a loaded configuration, keeping
// the interleaving of log-alarm and not-log-alarm. It reads the ordered
// entries, so an option the table does not know yet (alarm-harakiri before
// it is registered) is simply absent.
func FromConfig(c *config.Config) Config {
	cfg := DefaultConfig()
	cfg.Freq = time.Duration(c.Int("alarm-freq")) * time.Second
	cfg.MsgSize = c.Int("alarm-msg-size")
	cfg.Cheap = c.Bool("alarm-cheap")
	for _, e := range c.Entries() {
		switch e.Name {
		case "alarm":
			cfg.Alarms = append(cfg.Alarms, e.Value)
		case "log-alarm", "not-log-alarm":
			cfg.LogRules = append(cfg.LogRules, LogRule{Negate: e.Name == "not-log-alarm", Spec: e.Value})
		case "alarm-backlog":
			cfg.Backlog = append(cfg.Backlog, e.Value)
		case "alarm-segfault":
			cfg.Segfault = append(cfg.Segfault, e.Value)
		case "alarm-harakiri":
			cfg.Harakiri = append(cfg.Harakiri, e.Value)
		case "alarm-fd":
			cfg.FD = append(cfg.FD, e.Value)
		}
	}
	return cfg
}

// logRule is a parsed LogRule.
type logRule struct {
	negate bool
	re     *regexp.Regexp
	alarms []*alarm
}

func (r LogRule) option() string {
	if r.Negate {
		return "not-log-alarm"
	}
	return "log-alarm"
}

// parseLogRule parses `<alarm>[,...] <regexp>`. The alarm list of a
// not-log-alarm is ignored (as in uWSGI), so its names are not checked.
func parseLogRule(r LogRule, alarms map[string]*alarm) (logRule, error) {
	opt := r.option()
	names, expr, ok := strings.Cut(strings.TrimSpace(r.Spec), " ")
	expr = strings.TrimSpace(expr)
	if !ok || names == "" || expr == "" {
		return logRule{}, fmt.Errorf("%s %q: want `<alarm>[,<alarm>...] <regexp>`", opt, r.Spec)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return logRule{}, fmt.Errorf("%s %q: %w", opt, r.Spec, explainRegexp(err))
	}
	lr := logRule{negate: r.Negate, re: re}
	if !r.Negate {
		if lr.alarms, err = lookup(opt, r.Spec, names, alarms); err != nil {
			return logRule{}, err
		}
	}
	return lr, nil
}

// explainRegexp adds a hint when the regexp uses PCRE syntax that RE2
// refuses (lookaround, backreferences, possessive or atomic groups): RE2
// is what keeps matching linear in the line's length.
func explainRegexp(err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		switch se.Code {
		case syntax.ErrInvalidPerlOp, syntax.ErrInvalidEscape, syntax.ErrInvalidRepeatOp:
			return fmt.Errorf("%w (gouwsgi uses RE2 regexps, which match in linear time; PCRE-only lookaround, backreferences, possessive and atomic groups are not available)", err)
		}
	}
	return err
}

// lookup resolves a comma-separated alarm list.
func lookup(opt, value, names string, alarms map[string]*alarm) ([]*alarm, error) {
	var out []*alarm
	for n := range strings.SplitSeq(names, ",") {
		n = strings.TrimSpace(n)
		a, ok := alarms[n]
		if !ok {
			return nil, fmt.Errorf("%s %q: no alarm named %q (define it with `alarm = %s <action>:<arg>`)", opt, value, n, n)
		}
		out = append(out, a)
	}
	return out, nil
}
