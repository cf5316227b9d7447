package router

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Option is one configuration line: its name and value as written.
type Option struct {
	Name, Value string
}

// Options is the configuration in the order it was given. It is a list
// rather than a map because a route table interleaves several option names
// (route, route-if, route-label, ...) and their relative order is the
// order the rules run in. Parse picks the options IsOption reports and
// ignores the others, so the whole configuration may be passed.
type Options []Option

// Config is the parsed routing and static-file configuration.
type Config struct {
	// Routes is the request chain (route*), run before the app.
	Routes []Rule
	// ResponseRoutes (response-route*) run when the response headers are
	// about to be sent, whoever produced them.
	ResponseRoutes []Rule
	// FinalRoutes (final-route*) run after the response was sent.
	FinalRoutes []Rule
	// StaticMaps are static-map and static-map2, in order.
	StaticMaps []StaticMap
	// StaticIndex are the index files tried for a directory (static-index).
	StaticIndex []string
	// CheckStatic are the document roots of check-static.
	CheckStatic []string
	// StaticSkipExt are suffixes never served as static files.
	StaticSkipExt []string

	// caches lists the cache names the rules use; a rule refers to a cache
	// by its index here, resolved once per Handler.
	caches []string
	// alone: a rule's action can answer without a worker.
	alone bool
}

// StaticMap is one static-map (prefix stripped) or static-map2 (full path
// appended) mount.
type StaticMap struct {
	Mount string // URL prefix
	Dir   string // directory (absolute, symlinks resolved at start-up)
	// Full is true for static-map2: the whole PATH_INFO is appended to Dir.
	Full bool
	// isFile is set when Dir is a file: the mount serves that one file.
	isFile bool
}

// Rule is one routing rule. Option and Value are kept for error messages
// and listings; the rest is compiled at start-up.
type Rule struct {
	Option string // e.g. "route-if"
	Value  string // the option value as written

	label      string         // route-label name; label rules do nothing
	run        bool           // route-run: no subject, always runs
	subjVar    string         // request var matched by re
	subjStatus bool           // *-status: the response status is the subject
	re         *regexp.Regexp // nil for run, label and if rules
	prefix     string         // re is exactly ^prefix: a cheaper test
	cond       *condition     // route-if / route-if-not
	negate     bool
	needCaps   bool // the action refers to $0..$9
	act        actionFunc
	gotoLabel  string // goto action: label or rule number, resolved after parsing
	gotoTarget int
}

// chain identifies one of the three rule tables.
type chain uint8

const (
	chainRequest chain = 1 << iota
	chainResponse
	chainFinal
	chainAll = chainRequest | chainResponse | chainFinal
)

func (c chain) String() string {
	switch c {
	case chainResponse:
		return "response-route"
	case chainFinal:
		return "final-route"
	}
	return "route"
}

var chainPrefixes = []struct {
	prefix string
	chain  chain
}{{"response-route", chainResponse}, {"final-route", chainFinal}, {"route", chainRequest}}

// subjectVars maps rule-kind suffixes to the request var their regex tests.
var subjectVars = map[string]string{
	"":             "PATH_INFO",
	"-uri":         "REQUEST_URI",
	"-qs":          "QUERY_STRING",
	"-host":        "HTTP_HOST",
	"-user-agent":  "HTTP_USER_AGENT",
	"-remote-addr": "REMOTE_ADDR",
	"-remote-user": "REMOTE_USER",
	"-referer":     "HTTP_REFERER",
}

var staticOptions = map[string]bool{
	"static-map": true, "static-map2": true, "static-index": true,
	"check-static": true, "static-skip-ext": true,
}

// splitRouteOption returns the chain and rule-kind suffix of a routing
// option name.
func splitRouteOption(name string) (chain, string, bool) {
	for _, cp := range chainPrefixes {
		rest, ok := strings.CutPrefix(name, cp.prefix)
		if !ok {
			continue
		}
		switch rest {
		case "-if", "-if-not", "-run", "-label":
			return cp.chain, rest, true
		case "-status":
			return cp.chain, rest, cp.chain != chainRequest
		}
		_, ok = subjectVars[rest]
		return cp.chain, rest, ok
	}
	return 0, "", false
}

// IsOption reports whether Parse handles the option name, so a strict
// configuration loader can tell routing options from unknown ones.
func IsOption(name string) bool {
	if staticOptions[name] {
		return true
	}
	_, _, ok := splitRouteOption(name)
	return ok
}

// Router is a parsed routing configuration; Handler puts it in front of an
// application handler.
type Router struct {
	cfg Config
}

// Config returns the parsed configuration.
func (r *Router) Config() Config { return r.cfg }

// ServesAlone reports whether the master may answer some requests without
// a worker: static files, or a rule whose action answers (a cache hit, a
// redirect, return, send, file). Those requests cost the master all their
// CPU, so its share cannot be sized by the workers alone.
func (r *Router) ServesAlone() bool {
	return r.cfg.alone || len(r.cfg.StaticMaps) > 0 || len(r.cfg.CheckStatic) > 0
}

// parser holds what rule compilation shares: the cache names seen so far
// and facts about the rule being compiled.
type parser struct {
	cfg   *Config
	chain chain
	// caps is set by tmpl when a template of the current rule uses $N.
	caps bool
	// gotoLabel is set by the goto action builder.
	gotoLabel string
}

// Parse builds the rule chains and static-file settings from the options.
// A line that does not parse is an error naming the option and the line.
func Parse(opts Options) (*Router, error) {
	cfg := &Config{}
	p := &parser{cfg: cfg}
	var errs []error
	for _, o := range opts {
		if err := p.option(o); err != nil {
			errs = append(errs, fmt.Errorf("%s = %s: %w", o.Name, o.Value, err))
		}
	}
	for _, c := range []struct {
		name  chain
		rules []Rule
	}{{chainRequest, cfg.Routes}, {chainResponse, cfg.ResponseRoutes}, {chainFinal, cfg.FinalRoutes}} {
		if err := resolveGotos(c.rules); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing configuration: %w", err)
	}
	return &Router{cfg: *cfg}, nil
}

func (p *parser) option(o Option) error {
	if staticOptions[o.Name] {
		return p.cfg.staticOption(o.Name, strings.TrimSpace(o.Value))
	}
	ch, kind, ok := splitRouteOption(o.Name)
	if !ok {
		return nil // not ours
	}
	p.chain, p.caps, p.gotoLabel = ch, false, ""
	r, err := p.rule(o, kind)
	if err != nil {
		return err
	}
	switch ch {
	case chainRequest:
		p.cfg.Routes = append(p.cfg.Routes, r)
	case chainResponse:
		p.cfg.ResponseRoutes = append(p.cfg.ResponseRoutes, r)
	default:
		p.cfg.FinalRoutes = append(p.cfg.FinalRoutes, r)
	}
	return nil
}

func (p *parser) rule(o Option, kind string) (Rule, error) {
	r := Rule{Option: o.Name, Value: o.Value}
	v := strings.TrimSpace(o.Value)
	if kind == "-label" {
		if v == "" {
			return r, errors.New("empty label")
		}
		r.label = v
		return r, nil
	}
	actionText := v
	if kind != "-run" {
		// The first space separates the subject test from the action, as in
		// uWSGI; a regex or condition therefore cannot contain spaces.
		test, rest, ok := strings.Cut(v, " ")
		if !ok {
			return r, errors.New("expected <test> <action>:<args>")
		}
		actionText = strings.TrimSpace(rest)
		if err := p.subject(&r, kind, test); err != nil {
			return r, err
		}
	} else {
		r.run = true
	}
	act, err := p.action(actionText)
	if err != nil {
		return r, err
	}
	r.act = act
	r.needCaps = p.caps
	r.gotoLabel = p.gotoLabel
	return r, nil
}

func (p *parser) subject(r *Rule, kind, test string) error {
	switch kind {
	case "-if", "-if-not":
		c, err := p.condition(test)
		if err != nil {
			return err
		}
		r.cond, r.negate = c, kind == "-if-not"
		return nil
	case "-status":
		r.subjStatus = true
	default:
		r.subjVar = subjectVars[kind]
	}
	re, err := compileRegexp(test)
	if err != nil {
		return err
	}
	r.re = re
	r.prefix = literalPrefixOnly(test)
	return nil
}

// compileRegexp compiles a rule regex and explains the RE2 limits, since
// uWSGI configs are written for PCRE.
func compileRegexp(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("regexp %q: %w (gouwsgi uses Go RE2 syntax: lookahead, lookbehind, backreferences and possessive quantifiers are not supported)", s, err)
	}
	return re, nil
}

// literalPrefixOnly returns P when the regex is exactly ^P with P free of
// metacharacters, the common "route = ^/path action" form, so matching is
// strings.HasPrefix instead of running the regex engine.
func literalPrefixOnly(s string) string {
	lit, ok := strings.CutPrefix(s, "^")
	if !ok || lit == "" || regexp.QuoteMeta(lit) != lit {
		return ""
	}
	return lit
}

// action parses "<name>:<args>". The colon is mandatory, as in uWSGI.
func (p *parser) action(s string) (actionFunc, error) {
	name, args, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("action %q needs a colon, e.g. %q", s, s+":")
	}
	spec, ok := actions[name]
	if !ok {
		if reason, known := unsupportedActions[name]; known {
			return nil, fmt.Errorf("action %q is not supported by gouwsgi: %s", name, reason)
		}
		return nil, fmt.Errorf("unknown action %q", name)
	}
	if spec.chains&p.chain == 0 {
		return nil, fmt.Errorf("action %q cannot be used in %s rules", name, p.chain)
	}
	act, err := spec.build(p, args)
	if err != nil {
		return nil, fmt.Errorf("action %s: %w", name, err)
	}
	p.cfg.alone = p.cfg.alone || (spec.alone && p.chain == chainRequest)
	return act, nil
}

// tmpl compiles a route argument template and notes capture use.
func (p *parser) tmpl(s string) (template, error) {
	t, err := compileTemplate(s)
	if err != nil {
		return t, err
	}
	p.caps = p.caps || t.caps
	return t, nil
}

// cacheSlot returns the index of a cache name in Config.caches.
func (p *parser) cacheSlot(name string) (int, error) {
	if strings.Contains(name, "$") {
		return 0, fmt.Errorf("cache name %q: variables are not supported in cache names", name)
	}
	for i, n := range p.cfg.caches {
		if n == name {
			return i, nil
		}
	}
	p.cfg.caches = append(p.cfg.caches, name)
	return len(p.cfg.caches) - 1, nil
}

// resolveGotos turns goto labels into rule indexes, refusing backward
// jumps at start-up (uWSGI refuses them at request time).
func resolveGotos(rules []Rule) error {
	labels := map[string]int{}
	for i, r := range rules {
		if r.label != "" {
			if _, dup := labels[r.label]; !dup {
				labels[r.label] = i
			}
		}
	}
	var errs []error
	for i := range rules {
		r := &rules[i]
		if r.gotoLabel == "" {
			continue
		}
		target, ok := labels[r.gotoLabel]
		if !ok {
			n, err := strconv.Atoi(r.gotoLabel)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s = %s: goto: no label %q in this chain", r.Option, r.Value, r.gotoLabel))
				continue
			}
			target = n
		}
		if target <= i || target >= len(rules) {
			errs = append(errs, fmt.Errorf("%s = %s: goto %q: target must be a later rule of the same chain (goto only jumps forward)", r.Option, r.Value, r.gotoLabel))
			continue
		}
		r.gotoTarget = target
	}
	return errors.Join(errs...)
}
