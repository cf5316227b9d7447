package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gouwsgi/gouwsgi/node/wire"
)

// verdict is what an action tells the chain, as uWSGI's route return codes.
type verdict uint8

const (
	vNext     verdict = iota // go on with the next rule
	vContinue                // stop the chain and run the app (continue/last)
	vBreak                   // stop the chain; the response is complete
	vGoto                    // jump forward to the rule's goto target
)

// actionFunc runs one action for one request.
type actionFunc func(st *state) verdict

type actionSpec struct {
	chains chain // which chains may use it
	build  func(p *parser, args string) (actionFunc, error)
	// alone: the action can answer a request itself, without a worker
	// (the master then needs CPU of its own, see Router.ServesAlone).
	alone bool
}

var actions map[string]actionSpec

func init() {
	// Header and body actions only make sense while the response is still
	// open; final-route runs after it was sent.
	const open = chainRequest | chainResponse
	actions = map[string]actionSpec{
		"continue":           {chainAll, verdictAction(vContinue), false},
		"last":               {chainAll, verdictAction(vContinue), false},
		"break":              {chainAll, buildBreak, true},
		"return":             {chainRequest, buildReturn, true},
		"break-with-status":  {chainRequest, buildReturn, true},
		"goto":               {chainAll, buildGoto, false},
		"log":                {chainAll, buildLog, false},
		"logvar":             {chainAll, buildLogvar, false},
		"donotlog":           {chainAll, buildDonotlog, false},
		"addvar":             {chainAll, buildAddvar, false},
		"addheader":          {open, buildAddheader, false},
		"delheader":          {open, buildDelheader, false},
		"remheader":          {open, buildDelheader, false},
		"clearheaders":       {open, buildClearheaders, false},
		"resetheaders":       {open, buildClearheaders, false},
		"redirect":           {chainRequest, buildRedirect(http.StatusFound, "Moved"), true},
		"redirect-302":       {chainRequest, buildRedirect(http.StatusFound, "Moved"), true},
		"redirect-permanent": {chainRequest, buildRedirect(http.StatusMovedPermanently, "Moved Permanently"), true},
		"redirect-301":       {chainRequest, buildRedirect(http.StatusMovedPermanently, "Moved Permanently"), true},
		"rewrite":            {chainRequest, buildRewrite(vNext), false},
		"rewrite-last":       {chainRequest, buildRewrite(vContinue), false},
		"setscriptname":      {chainRequest, buildSetVar("SCRIPT_NAME"), false},
		"seturi":             {chainRequest, buildSetVar("REQUEST_URI"), false},
		"setpathinfo":        {chainRequest, buildSetVar("PATH_INFO"), false},
		"setmethod":          {chainRequest, buildSetVar("REQUEST_METHOD"), false},
		"setremoteaddr":      {chainRequest, buildSetVar("REMOTE_ADDR"), false},
		"setscheme":          {chainRequest, buildSetVar("UWSGI_SCHEME"), false},
		"setdocroot":         {chainRequest, buildSetVar("DOCUMENT_ROOT"), false},
		"send":               {chainRequest, buildSend(""), true},
		"send-crnl":          {chainRequest, buildSend("\r\n"), true},
		"static":             {chainRequest, buildStatic, true},
		"file":               {chainRequest, buildFile(vBreak), true},
		"file-next":          {chainRequest, buildFile(vNext), true},
		"basicauth":          {chainRequest, buildBasicAuth(false), false},
		"basicauth-next":     {chainRequest, buildBasicAuth(true), false},
		"cache":              {chainRequest, buildCache(vBreak), true},
		"cache-continue":     {chainRequest, buildCache(vNext), true},
		"cachestore":         {open, buildCacheStore, false},
		"cache-store":        {open, buildCacheStore, false},
		"cacheset":           {chainAll, buildCacheSet, false},
		"cachevar":           {chainAll, buildCacheVar, false},
		"cacheinc":           {chainAll, buildCacheMath("inc", 1), false},
		"cachedec":           {chainAll, buildCacheMath("dec", 1), false},
		"cachemul":           {chainAll, buildCacheMath("mul", 2), false},
		"cachediv":           {chainAll, buildCacheMath("div", 2), false},
	}
}

// unsupportedActions are uWSGI actions gouwsgi knowingly lacks; naming them
// makes the start-up error clearer than "unknown action".
var unsupportedActions = map[string]string{
	"uwsgi": "proxying is done by the frontend", "http": "proxying is done by the frontend",
	"proxyhttp": "proxying is done by the frontend", "proxyuwsgi": "proxying is done by the frontend",
	"fcgi": "no FastCGI client", "signal": "no uWSGI signal framework", "alarm": "raise alarms with log-alarm",
	"harakiri": "per-request harakiri is set from the app", "gzip": "no response transformations besides cachestore",
	"chunked": "no response transformations besides cachestore", "flush": "no response transformations besides cachestore",
	"fixcl": "no response transformations besides cachestore", "tofile": "no response transformations besides cachestore",
	"static-next": "use file-next", "sendfile": "use static or file (served with sendfile)",
	"fastfile": "use static or file (served with sendfile)", "ldapauth": "only basicauth", "radius": "only basicauth",
	"memcached": "only the local cache", "redis": "only the local cache",
}

func verdictAction(v verdict) func(*parser, string) (actionFunc, error) {
	return func(*parser, string) (actionFunc, error) {
		return func(*state) verdict { return v }, nil
	}
}

// parseStatus reads the "NNN[ reason]" status of break and clearheaders.
// Go's http.ResponseWriter always sends the standard reason phrase.
func parseStatus(s string) (int, error) {
	code, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return 0, fmt.Errorf("status %q: expected a three-digit HTTP status", s)
	}
	return n, nil
}

// buildBreak: "break:" stops the chain; "break:403 Forbidden" also sends
// that status with no body, as uWSGI does.
func buildBreak(p *parser, args string) (actionFunc, error) {
	if strings.TrimSpace(args) == "" {
		return func(*state) verdict { return vBreak }, nil
	}
	if p.chain != chainRequest {
		return nil, fmt.Errorf("a status can only be sent from route rules")
	}
	code, err := parseStatus(args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		h := st.rw.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Connection", "close")
		st.rw.WriteHeader(code)
		return vBreak
	}, nil
}

// buildReturn: "return:404" sends the status with its reason phrase as a
// text/plain body.
func buildReturn(_ *parser, args string) (actionFunc, error) {
	code, err := strconv.Atoi(strings.TrimSpace(args))
	text := http.StatusText(code)
	if err != nil || text == "" {
		return nil, fmt.Errorf("status %q: expected a known HTTP status code", args)
	}
	cl := strconv.Itoa(len(text))
	return func(st *state) verdict {
		h := st.rw.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", cl)
		st.rw.WriteHeader(code)
		_, _ = st.rw.Write([]byte(text))
		return vBreak
	}, nil
}

func buildGoto(p *parser, args string) (actionFunc, error) {
	label := strings.TrimSpace(args)
	if label == "" {
		return nil, errors.New("missing label")
	}
	if strings.Contains(label, "$") {
		return nil, errors.New("variables in goto labels are not supported")
	}
	p.gotoLabel = label
	return func(*state) verdict { return vGoto }, nil
}

func buildLog(p *parser, args string) (actionFunc, error) {
	t, err := p.tmpl(args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		st.h.log.Info(t.str(st))
		return vNext
	}, nil
}

// keyValue splits "K=V" with a static key and a template value.
func keyValue(p *parser, args string) (string, template, error) {
	k, v, ok := strings.Cut(args, "=")
	if !ok || k == "" {
		return "", template{}, errors.New("expected <name>=<value>")
	}
	t, err := p.tmpl(v)
	return k, t, err
}

func buildLogvar(p *parser, args string) (actionFunc, error) {
	k, t, err := keyValue(p, args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		st.r.Log.LogVars = append(st.r.Log.LogVars, wire.Var{Key: k, Value: t.str(st)})
		return vNext
	}, nil
}

func buildDonotlog(*parser, string) (actionFunc, error) {
	return func(st *state) verdict {
		st.r.Log.NoLog = true
		return vNext
	}, nil
}

// buildAddvar sets a request var; an existing var is replaced so the app
// sees the new value whichever occurrence it reads.
func buildAddvar(p *parser, args string) (actionFunc, error) {
	k, t, err := keyValue(p, args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		st.r.Vars.Set(k, t.str(st))
		return vNext
	}, nil
}

func buildAddheader(p *parser, args string) (actionFunc, error) {
	if name, _, ok := strings.Cut(args, ":"); !ok || strings.TrimSpace(name) == "" {
		return nil, errors.New("expected <Header-Name>: <value>")
	}
	t, err := p.tmpl(args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		name, value, _ := strings.Cut(t.str(st), ":")
		st.hdrAdd = append(st.hdrAdd, wire.Var{Key: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
		st.rw.pendingMods = true
		return vNext
	}, nil
}

func buildDelheader(p *parser, args string) (actionFunc, error) {
	if strings.TrimSpace(args) == "" {
		return nil, errors.New("missing header name")
	}
	t, err := p.tmpl(strings.TrimSpace(args))
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		st.hdrDel = append(st.hdrDel, t.str(st))
		st.rw.pendingMods = true
		return vNext
	}, nil
}

// buildClearheaders drops the headers produced so far and sets a new
// status: the usual way to rewrite an error response in response-route.
// Headers from addheader survive it, as uWSGI keeps them apart.
func buildClearheaders(_ *parser, args string) (actionFunc, error) {
	code, err := parseStatus(args)
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		st.hdrClear = true
		st.hdrStatus = code
		st.rw.pendingMods = true
		return vNext
	}, nil
}

func buildRedirect(code int, body string) func(*parser, string) (actionFunc, error) {
	cl := strconv.Itoa(len(body))
	return func(p *parser, args string) (actionFunc, error) {
		if strings.TrimSpace(args) == "" {
			return nil, errors.New("missing URL")
		}
		t, err := p.tmpl(args)
		if err != nil {
			return nil, err
		}
		return func(st *state) verdict {
			h := st.rw.Header()
			h.Set("Location", t.str(st))
			h.Set("Content-Length", cl)
			st.rw.WriteHeader(code)
			_, _ = st.rw.Write([]byte(body))
			return vBreak
		}, nil
	}
}

// buildRewrite rebuilds PATH_INFO (percent-decoded) and QUERY_STRING from
// "<path>[?<qs>]"; a new query string is prepended to the old one, as uWSGI
// does. REQUEST_URI is left alone.
func buildRewrite(v verdict) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		if strings.TrimSpace(args) == "" {
			return nil, errors.New("missing new path")
		}
		t, err := p.tmpl(args)
		if err != nil {
			return nil, err
		}
		return func(st *state) verdict {
			target := t.str(st)
			pathPart, qs, hasQS := strings.Cut(target, "?")
			if dec, err := url.PathUnescape(pathPart); err == nil {
				pathPart = dec
			}
			st.r.Vars.Set("PATH_INFO", pathPart)
			if hasQS {
				if old := st.r.Vars.Value("QUERY_STRING"); old != "" {
					qs += "&" + old
				}
				st.r.Vars.Set("QUERY_STRING", qs)
			}
			return v
		}, nil
	}
}

func buildSetVar(name string) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		t, err := p.tmpl(args)
		if err != nil {
			return nil, err
		}
		return func(st *state) verdict {
			st.r.Vars.Set(name, t.str(st))
			return vNext
		}, nil
	}
}

// buildSend writes raw data to the response body. uWSGI writes it to the
// socket before any header; through an http.ResponseWriter it becomes body
// data after the (default 200) headers.
func buildSend(suffix string) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		t, err := p.tmpl(args)
		if err != nil {
			return nil, err
		}
		return func(st *state) verdict {
			// Headers first: response rules run then and reuse the scratch buffer.
			if !st.rw.wroteHeader {
				st.rw.WriteHeader(http.StatusOK)
			}
			st.scratch = append(t.appendTo(st, st.scratch[:0]), suffix...)
			_, _ = st.rw.Write(st.scratch)
			return vNext
		}, nil
	}
}

// parseKV parses uWSGI's "k=v,k=v" lists; "\," is a literal comma. Keys
// not in allowed are an error, as in uWSGI.
func parseKV(s string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	var items []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			items = append(items, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	items = append(items, cur.String())
	for _, it := range items {
		if strings.TrimSpace(it) == "" {
			continue
		}
		k, v, ok := strings.Cut(it, "=")
		if !ok {
			return nil, fmt.Errorf("%q: expected key=value", it)
		}
		k = strings.TrimSpace(k)
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			return nil, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(allowed, ", "))
		}
		out[k] = v
	}
	return out, nil
}

// isTrue reads a kv flag such as mime=1.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
