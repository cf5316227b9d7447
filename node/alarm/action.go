package alarm

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// action delivers one incident. run is one try; the caller retries.
type action interface {
	run(ctx context.Context, inc Incident) error
	String() string
}

// maxTimeout bounds any configured action timeout, so that a typo such as
// timeout=36000 cannot park an alarm's queue for hours.
const maxTimeout = 10 * time.Minute

// unsupportedActions explains the uWSGI alarm plugins gouwsgi refuses.
var unsupportedActions = map[string]string{
	"signal":   "alarms need uWSGI signals, which gouwsgi does not have; use cmd:",
	"mule":     "gouwsgi has no mules; use cmd:",
	"xmpp":     "gouwsgi has no XMPP client; use cmd: or curl: with a webhook",
	"airbrake": "gouwsgi has no Airbrake client; use curl: with a webhook",
}

// parseAlarm parses `<name> <action>:<arg>`.
func parseAlarm(spec string, def Config, log *slog.Logger, self *selfLines) (string, action, error) {
	name, act, ok := strings.Cut(strings.TrimSpace(spec), " ")
	act = strings.TrimSpace(act)
	if !ok || act == "" {
		return "", nil, fmt.Errorf("alarm %q: want `<name> <action>:<arg>`", spec)
	}
	if strings.Contains(name, ",") {
		return "", nil, fmt.Errorf("alarm %q: the name %q must not contain a comma (commas separate alarm lists)", spec, name)
	}
	kind, arg, _ := strings.Cut(act, ":")
	var a action
	var err error
	switch kind {
	case "cmd":
		if strings.TrimSpace(arg) == "" {
			err = errors.New("cmd: needs a shell command")
		}
		a = &cmdAction{shell: arg, timeout: def.Timeout}
	case "log":
		a = &logAction{prefix: arg, log: log, self: self}
	case "curl":
		a, err = parseWebhook(arg, def.Timeout)
	default:
		if why, ok := unsupportedActions[kind]; ok {
			err = fmt.Errorf("%s: %s", kind, why)
		} else {
			err = fmt.Errorf("unknown action %q (gouwsgi has cmd:, log: and curl:)", kind)
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("alarm %q: %w", spec, err)
	}
	return name, a, nil
}

// cmdAction runs a shell command with the message on its stdin, as
// uWSGI's cmd: does.
type cmdAction struct {
	shell   string
	timeout time.Duration
}

func (a *cmdAction) String() string { return "cmd:" + a.shell }

// maxOutput bounds the command output kept for the failure log line.
const maxOutput = 4 << 10

func (a *cmdAction) run(ctx context.Context, inc Incident) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", a.shell)
	cmd.Stdin = strings.NewReader(inc.Message)
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a timeout kills what the shell started
	// too (mail, curl...), not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipe open must not hold us.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %s", a.timeout)
	}
	if err != nil {
		if s := strings.TrimSpace(out.String()); s != "" {
			return fmt.Errorf("%w: %s", err, s)
		}
		return err
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and discards the
// rest, so a chatty command cannot grow the master's memory.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logAction writes `ALARM: <prefix> <msg>` to the log, as uWSGI's log:.
type logAction struct {
	prefix string
	log    *slog.Logger
	self   *selfLines
}

func (a *logAction) String() string { return "log:" + a.prefix }

func (a *logAction) run(_ context.Context, inc Incident) error {
	line := "ALARM: " + inc.Message
	if a.prefix != "" {
		line = "ALARM: " + a.prefix + " " + inc.Message
	}
	// The line comes back through the log tap; marking it keeps a
	// log-alarm that matches it from raising the alarm again.
	a.self.add(line)
	defer a.self.remove(line)
	a.log.Warn(line)
	return nil
}

// selfLines is the set of lines the log action is writing right now. The
// log sink calls its taps synchronously, so a line is in the set exactly
// while the tap may see it.
type selfLines struct {
	mu    sync.Mutex
	lines map[string]int
}

func (s *selfLines) add(line string) {
	s.mu.Lock()
	if s.lines == nil {
		s.lines = map[string]int{}
	}
	s.lines[line]++
	s.mu.Unlock()
}

func (s *selfLines) remove(line string) {
	s.mu.Lock()
	if s.lines[line]--; s.lines[line] <= 0 {
		delete(s.lines, line)
	}
	s.mu.Unlock()
}

func (s *selfLines) has(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines[line] > 0
}

// webhookAction POSTs the incident as JSON; it is what curl: means in
// gouwsgi (http and https only).
type webhookAction struct {
	url, redacted, method string
	authUser, authPass    string
	client                *http.Client
	timeout, connTimeout  time.Duration
}

// String shows only the scheme and host: webhook paths and queries often
// carry the secret (Slack, PagerDuty), and this goes to the log.
func (a *webhookAction) String() string { return "curl:" + a.redacted }

// parseWebhook parses `<url>[;opt=val...]` with uWSGI's curl option names.
func parseWebhook(arg string, timeout time.Duration) (*webhookAction, error) {
	parts := strings.Split(arg, ";")
	a := &webhookAction{url: strings.TrimSpace(parts[0]), method: http.MethodPost, timeout: timeout, connTimeout: timeout}
	u, err := url.Parse(a.url)
	switch {
	case err != nil:
		return nil, fmt.Errorf("curl: url %q: %w", a.url, err)
	case u.Scheme == "smtp" || u.Scheme == "smtps":
		return nil, fmt.Errorf("curl: %s urls (mail) are not supported; use a cmd: alarm such as cmd:mail -s 'uWSGI alarm' you@example.com", u.Scheme)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("curl: url %q: want an http:// or https:// webhook", a.url)
	case u.Host == "":
		return nil, fmt.Errorf("curl: url %q has no host", a.url)
	}
	a.redacted = u.Scheme + "://" + u.Host + "/..."
	var insecure bool
	for _, p := range parts[1:] {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "timeout", "conn_timeout":
			d, err := parseTimeout(v)
			if err != nil {
				return nil, fmt.Errorf("curl: %s=%s: %w", k, v, err)
			}
			if k == "timeout" {
				a.timeout = d
			} else {
				a.connTimeout = d
			}
		case "method":
			a.method = strings.ToUpper(v)
			if a.method != http.MethodPost && a.method != http.MethodPut && a.method != http.MethodPatch {
				return nil, fmt.Errorf("curl: method=%s: want POST, PUT or PATCH (the incident is sent as a JSON body)", v)
			}
		case "auth_user":
			a.authUser = v
		case "auth_pass":
			a.authPass = v
		case "ssl_insecure":
			if v == "" {
				v = "true"
			}
			if insecure, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("curl: ssl_insecure=%s: want true or false", v)
			}
		case "mail_to", "mail_from", "subject", "ssl":
			return nil, fmt.Errorf("curl: option %q is for smtp urls, which gouwsgi does not support", k)
		default:
			return nil, fmt.Errorf("curl: unknown option %q (have timeout, conn_timeout, method, auth_user, auth_pass, ssl_insecure)", k)
		}
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: a.connTimeout}).DialContext,
		TLSHandshakeTimeout: a.connTimeout,
		// ssl_insecure is the operator's explicit choice for a webhook
		// with a self-signed certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec
		Proxy:           http.ProxyFromEnvironment,
	}
	a.client = &http.Client{Transport: tr, Timeout: a.timeout}
	return a, nil
}

// parseTimeout reads seconds (uWSGI's unit) or a Go duration ("500ms").
func parseTimeout(v string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, errors.New("want seconds or a duration such as 500ms")
	}
	if d <= 0 || d > maxTimeout {
		return 0, fmt.Errorf("must be positive and at most %s", maxTimeout)
	}
	return d, nil
}

// webhookBody is the JSON document a webhook receives.
type webhookBody struct {
	Alarm   string    `json:"alarm"`
	Message string    `json:"message"`
	Node    string    `json:"node"`
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
}

func (a *webhookAction) run(ctx context.Context, inc Incident) error {
	body, err := json.Marshal(webhookBody{Alarm: inc.Alarm, Message: inc.Message, Node: inc.Node, Kind: inc.Kind, Time: inc.At})
	if err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, a.method, a.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gouwsgi-alarm")
	if a.authUser != "" {
		req.SetBasicAuth(a.authUser, a.authPass)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, secret included; keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", ue.Op, a.redacted, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
