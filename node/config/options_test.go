package config

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOptionTable(t *testing.T) {
	type row struct {
		name    string
		kind    Kind
		def     string
		status  Status
		short   byte
		aliases []string
	}
	// What the brief and uWSGI 2.0 fix for the options other packages read.
	tests := []row{
		{"ini", KindList, "", Supported, 0, nil},
		{"strict", KindBool, "", Supported, 0, nil},
		{"set-placeholder", KindList, "", Supported, 0, []string{"set-ph"}},
		{"chdir", KindString, "", Supported, 0, nil},
		{"module", KindString, "", Supported, 'w', []string{"wsgi"}},
		{"wsgi-file", KindString, "", Supported, 0, []string{"file"}},
		{"callable", KindString, "application", Supported, 0, nil},
		{"home", KindString, "", Supported, 'H', []string{"virtualenv", "venv", "pyhome"}},
		{"python-bin", KindString, "", Supported, 0, nil},
		{"pythonpath", KindList, "", Supported, 0, []string{"python-path", "pp"}},
		{"env", KindList, "", Supported, 0, nil},
		{"master", KindBool, "", Supported, 'M', nil},
		{"processes", KindInt, "1", Supported, 'p', []string{"workers"}},
		{"threads", KindInt, "1", Supported, 0, nil},
		{"socket", KindList, "", Supported, 's', []string{"uwsgi-socket"}},
		{"https", KindList, "", Supported, 0, nil},
		{"chmod-socket", KindString, "", Supported, 'C', []string{"chmod"}},
		{"listen", KindInt, "100", Supported, 'l', nil},
		{"buffer-size", KindInt, "4096", Supported, 'b', nil},
		{"http-timeout", KindInt, "60", Supported, 0, nil},
		{"socket-timeout", KindInt, "4", Supported, 'z', nil},
		{"harakiri", KindInt, "0", Supported, 't', nil},
		{"max-requests", KindInt, "0", Supported, 'R', nil},
		{"worker-reload-mercy", KindInt, "60", Supported, 0, nil},
		{"touch-reload", KindList, "", Supported, 0, nil},
		{"master-fifo", KindList, "", Supported, 0, nil},
		{"disable-logging", KindBool, "", Supported, 'L', nil},
		{"logformat", KindString, "", Supported, 0, []string{"log-format"}},
		{"stats", KindString, "", Supported, 0, []string{"stats-server"}},
		{"metrics", KindString, "", Supported, 0, nil},
		{"static-map", KindList, "", Supported, 0, nil},
		{"cache2", KindList, "", Supported, 0, nil},
		{"cache-expire-freq", KindInt, "3", Supported, 0, nil},
		{"alarm-freq", KindInt, "3", Supported, 0, nil},
		{"alarm-msg-size", KindInt, "8192", Supported, 0, nil},
		{"log-alarm", KindList, "", Supported, 0, []string{"alarm-log"}},
		{"legion", KindList, "", Supported, 0, nil},
		{"legion-freq", KindInt, "3", Supported, 0, nil},
		{"legion-tolerance", KindInt, "15", Supported, 0, nil},
		{"legion-node-left", KindList, "", Supported, 0, nil},
		{"admin", KindString, "", Supported, 0, nil},
		{"plugins", KindList, "", NoEffect, 0, []string{"plugin"}},
		{"autoload", KindBool, "", NoEffect, 0, nil},
		{"single-interpreter", KindBool, "", NoEffect, 'i', nil},
		{"enable-threads", KindBool, "", NoEffect, 'T', nil},
		{"thunder-lock", KindBool, "", NoEffect, 0, nil},
		{"cpu-affinity", KindInt, "", NoEffect, 0, nil},
		{"lazy", KindBool, "", NoEffect, 0, nil},
		{"py-autoreload", KindInt, "", Unsupported, 0, []string{"python-autoreload", "py-auto-reload", "python-auto-reload"}},
		{"uid", KindString, "", Unsupported, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := Lookup(tt.name)
			if !ok {
				t.Fatal("missing")
			}
			if o.Name != tt.name || o.Kind != tt.kind || o.Default != tt.def || o.Status != tt.status || o.Short != tt.short || !slices.Equal(o.Aliases, tt.aliases) {
				t.Errorf("got %+v", o)
			}
			for _, a := range tt.aliases {
				if b, ok := Lookup(a); !ok || b.Name != tt.name {
					t.Errorf("Lookup(alias %q) = %q, %v", a, b.Name, ok)
				}
			}
		})
	}

	t.Run("every row is well formed", func(t *testing.T) {
		shorts := map[byte]string{}
		for _, o := range Options() {
			if o.Doc == "" || o.Group == "" {
				t.Errorf("%s: no doc or group", o.Name)
			}
			if o.Status == NoEffect && o.Differs == "" {
				t.Errorf("%s: no-effect option does not say why", o.Name)
			}
			if o.Kind == KindBool && o.Bare != "true" {
				t.Errorf("%s: boolean without bare value", o.Name)
			}
			if o.Default != "" {
				if _, err := checkValue(o, o.Default); err != nil {
					t.Errorf("%s: default does not fit its kind: %v", o.Name, err)
				}
			}
			if strings.Contains(o.Differs, extension) && o.Status != Supported {
				t.Errorf("%s: extension that is not supported", o.Name)
			}
			if o.Short != 0 {
				if prev, dup := shorts[o.Short]; dup {
					t.Errorf("-%c is both %s and %s", o.Short, prev, o.Name)
				}
				shorts[o.Short] = o.Name
			}
		}
	})

	t.Run("every option of the reference's engine and config sections is known", func(t *testing.T) {
		for _, name := range strings.Fields(`master processes workers threads enable-threads harakiri harakiri-verbose
			harakiri-graceful-timeout harakiri-graceful-signal harakiri-queue-threshold harakiri-no-arh max-requests
			max-requests-delta min-worker-lifetime max-worker-lifetime max-worker-lifetime-delta reload-on-rss reload-on-as
			reload-on-uss reload-on-pss evil-reload-on-rss evil-reload-on-as worker-reload-mercy reload-mercy cheaper
			cheaper-initial cheaper-step cheaper-overload cheaper-algo cheaper-busyness-max cheaper-busyness-min
			cheaper-busyness-multiplier cheaper-busyness-penalty cheaper-busyness-backlog-alert cheaper-busyness-backlog-step
			cheaper-busyness-backlog-multiplier cheaper-busyness-backlog-nonzero cheaper-busyness-verbose cheaper-idle
			cheaper-rss-limit-soft cheaper-rss-limit-hard cheap idle die-on-idle socket uwsgi-socket http-socket https-socket
			shared-socket http https http-timeout http-keepalive http-to listen chmod-socket chown-socket umask reuse-port
			so-keepalive socket-timeout buffer-size post-buffering thunder-lock vacuum pidfile pidfile2 daemonize daemonize2
			uid gid chdir need-app lazy-apps lazy single-interpreter procname procname-master procname-prefix
			procname-prefix-spaced auto-procname cpu-affinity die-on-term exit-on-reload no-orphans logto logto2 log-truncate
			disable-logging log-4xx log-5xx log-slow log-big log-date logdate log-micros memory-report log-master log-maxsize
			log-backupname log-reopen log-x-forwarded-for logformat log-format stats stats-server stats-http stats-minified
			stats-no-cores stats-no-metrics stats-push static-map static-map2 touch-reload touch-chain-reload
			touch-workers-reload hook-asap hook-master-start exec-asap call-asap master-fifo
			ini xml yaml json include inherit set-placeholder set-ph set declare-option strict if-env if-not-env if-exists
			if-not-exists if-file if-dir if-opt if-reload if-hostname if-hostname-match if-plugin endif end-if for for-glob
			for-times for-readline endfor end-for`) {
			if _, ok := Lookup(name); !ok {
				t.Errorf("%s missing", name)
			}
		}
	})

	t.Run("gouwsgi implements these", func(t *testing.T) {
		for _, name := range strings.Fields(`ini strict set-placeholder chdir module wsgi-file callable home pythonpath env
			master processes threads lazy-apps need-app http http-socket socket https chmod-socket listen vacuum pidfile
			so-keepalive buffer-size http-timeout socket-timeout post-buffering harakiri harakiri-verbose max-requests
			max-requests-delta max-worker-lifetime max-worker-lifetime-delta min-worker-lifetime reload-on-rss
			worker-reload-mercy reload-mercy cheaper cheaper-initial cheaper-step cheaper-algo cheaper-overload touch-reload
			touch-chain-reload die-on-term master-fifo disable-logging logformat log-micros logto daemonize log-truncate
			memory-report procname procname-master stats stats-http metrics route route-if route-if-not route-run route-uri
			route-qs route-host route-user-agent route-remote-addr route-label response-route response-route-if
			response-route-if-not response-route-run response-route-status final-route final-route-if final-route-if-not
			final-route-run final-route-status static-map static-map2 static-index check-static static-skip-ext cache2 cache
			cache-blocksize cache-store cache-store-sync cache-expire-freq alarm alarm-freq alarm-msg-size log-alarm
			not-log-alarm alarm-backlog alarm-segfault alarm-fd alarm-cheap alarm-lq legion legion-node legion-quorum
			legion-scroll legion-freq legion-tolerance legion-lord legion-unlord legion-setup legion-death legion-join
			legion-node-joined legion-node-left python-bin legion-data-dir legion-raft-addr legion-rpc-addr admin
			admin-tls-cert admin-tls-key admin-tls-ca admin-token-file legion-tls-cert legion-tls-key legion-tls-ca`) {
			o, ok := Lookup(name)
			if !ok || o.Status != Supported {
				t.Errorf("%s: %+v, %v; want supported", name, o, ok)
			}
		}
		for _, name := range strings.Fields(`python-bin legion-data-dir legion-raft-addr legion-rpc-addr admin admin-tls-cert
			admin-tls-key admin-tls-ca admin-token-file legion-tls-cert legion-tls-key legion-tls-ca metrics`) {
			if o, _ := Lookup(name); !strings.Contains(o.Differs, "gouwsgi extension") {
				t.Errorf("%s: Differs = %q, want it to say gouwsgi extension", name, o.Differs)
			}
		}
	})

	t.Run("Options is a copy", func(t *testing.T) {
		opts := Options()
		opts[0].Name = "changed"
		opts[0].Aliases = append(opts[0].Aliases, "x")
		if Options()[0].Name == "changed" {
			t.Error("Options exposes the table")
		}
	})
}

func TestParseKV(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"name=mycache,items=300,hash=murmur2", map[string]string{"name": "mycache", "items": "300", "hash": "murmur2"}, true},
		{"key=${REQUEST_METHOD}${REQUEST_URI},name=c,content_type=application/json",
			map[string]string{"key": "${REQUEST_METHOD}${REQUEST_URI}", "name": "c", "content_type": "application/json"}, true},
		{" name = x , items=1", map[string]string{"name": " x ", "items": "1"}, true},
		{"k=a=b=c", map[string]string{"k": "a=b=c"}, true},
		{`k=a\,b,j=\\`, map[string]string{"k": "a,b", "j": `\`}, true},
		{"a=1,,b=2,", map[string]string{"a": "1", "b": "2"}, true},
		{"a=1,a=2", map[string]string{"a": "2"}, true},
		{"k=", map[string]string{"k": ""}, true},
		{"", map[string]string{}, true},
		{"name=x,flag", nil, false},
		{"=v", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKV(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("error = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadValue) {
				t.Errorf("error %v is not ErrBadValue", err)
			}
			if tt.ok && !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true}, {"64k", 65536, true}, {"64K", 65536, true}, {"1m", 1 << 20, true},
		{"2G", 2 << 30, true}, {"1kb", 1024, true}, {"3MiB", 3 << 20, true}, {" 5 ", 5, true},
		{"0", 0, true}, {"-1", 0, false}, {"", 0, false}, {"k", 0, false}, {"1t", 0, false},
		{"9223372036854775807g", 0, false}, {"ten", 0, false},
	}
	for _, tt := range tests {
		got, err := Bytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Bytes(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

var update = flag.Bool("update", false, "rewrite docs/options.md from the option table")

// docPath is docs/options.md, from this package's directory.
var docPath = filepath.Join("..", "..", "docs", "options.md")

func TestOptionsDocUpToDate(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(docPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v; regenerate with: go test ./node/config -run TestOptionsDocUpToDate -update", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("docs/options.md differs from the option table; regenerate with: go test ./node/config -run TestOptionsDocUpToDate -update")
	}
}

func TestWriteMarkdownContent(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	for _, o := range Options() {
		if !strings.Contains(doc, "`"+o.Name+"`") {
			t.Errorf("%s missing from the reference", o.Name)
		}
	}
	noEffect := doc[strings.Index(doc, "## Options accepted without effect"):strings.Index(doc, "## uWSGI options gouwsgi does not support")]
	for _, name := range []string{"plugins", "autoload", "single-interpreter", "enable-threads", "thunder-lock", "cpu-affinity", "lazy"} {
		if !strings.Contains(noEffect, "`"+name+"`") {
			t.Errorf("%s missing from the no-effect section", name)
		}
	}
	if !strings.Contains(doc, "gouwsgi's SIGHUP reloads workers only") {
		t.Error("lazy's note missing")
	}
	if !strings.Contains(doc, `\|`) {
		t.Error("pipes in docs are not escaped")
	}
}
