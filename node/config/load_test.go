package config

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestINISyntax(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    want
	}{
		{"comments and blank lines", "; top\n# also\n[uwsgi]\n\n  ; indented comment\n\t# tab comment\nprocesses = 3\n", want{"processes": 3}},
		{"whitespace stripped", "[uwsgi]\n  http   =   :8000  \t\r\n", want{"http": ":8000"}},
		{"crlf line ends", "[uwsgi]\r\nmaster = true\r\nlisten = 5\r\n", want{"master": true, "listen": 5}},
		{"bare boolean", "[uwsgi]\nmaster\nvacuum\n", want{"master": true, "vacuum": true}},
		{"boolean words", "[uwsgi]\nmaster = True\nvacuum = off\nlazy-apps = YES\nneed-app = 0\nharakiri-verbose = on\nstrict = no\n",
			want{"master": true, "vacuum": false, "lazy-apps": true, "need-app": false, "harakiri-verbose": true, "strict": false}},
		{"other sections ignored", "[other]\nprocesses = 9\n[uwsgi]\nprocesses = 2\n[more]\nprocesses = 7\n", want{"processes": 2}},
		{"value keeps inline ; and quotes", "[uwsgi]\nprocname = \"a ; b\" # c\n", want{"procname": "\"a ; b\" # c"}},
		{"value keeps '='", "[uwsgi]\nenv = A=b=c\n", want{"env": []string{"A=b=c"}}},
		{"last scalar wins", "[uwsgi]\nprocesses = 2\nprocesses = 5\n", want{"processes": 5}},
		{"lists accumulate", "[uwsgi]\nsocket = :1\nuwsgi-socket = :2\nsocket = /tmp/s\n", want{"socket": []string{":1", ":2", "/tmp/s"}}},
		{"aliases", "[uwsgi]\nworkers = 4\nvirtualenv = /v\nfile = a.py\nlog-format = x\nstats-server = :1\n",
			want{"processes": 4, "home": "/v", "wsgi-file": "a.py", "logformat": "x", "stats": ":1"}},
		{"bare chmod-socket", "[uwsgi]\nchmod-socket\n", want{"chmod-socket": "666"}},
		{"defaults", "[uwsgi]\n", want{"listen": 100, "buffer-size": 4096, "http-timeout": 60, "socket-timeout": 4,
			"worker-reload-mercy": 60, "alarm-freq": 3, "alarm-msg-size": 8192, "legion-freq": 3, "legion-tolerance": 15,
			"cache-expire-freq": 3, "processes": 1, "callable": "application", "master": false, "chmod-socket": ""}},
		{"underscore key read as option", "[uwsgi]\nmax_requests = 7\n", want{"max-requests": 7}},
		{"section header without ]", "[uwsgi\nprocesses = 6\n", want{"processes": 6}},
		{"no final newline", "[uwsgi]\nprocesses = 8", want{"processes": 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadINI(t, tt.content)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.check(t, c)
		})
	}
}

func TestINIIncludes(t *testing.T) {
	dir := t.TempDir()
	other := writeFile(t, dir, "other.ini", "[uwsgi]\nprocesses = 2\nsocket = :2\n[extra]\nharakiri = 30\n")
	main := writeFile(t, dir, "main.ini", "[uwsgi]\nprocesses = 1\nsocket = :1\nini = "+other+"\nsocket = :3\nini = :extra\n"+
		"[prod]\nprocesses = 16\nini = "+other+":extra\n")

	tests := []struct {
		name string
		args []string
		want want
	}{
		{"in place, later lines override", []string{"--ini", main},
			want{"processes": 2, "socket": []string{":1", ":2", ":3"}, "harakiri": 30}},
		{"file:section", []string{"--ini", main + ":prod"}, want{"processes": 16, "harakiri": 30}},
		{"bare .ini argument", []string{main}, want{"processes": 2}},
		{"bare .ini:section argument", []string{main + ":prod"}, want{"processes": 16}},
		{"repeated --ini in order", []string{"--ini", other, "--ini", main + ":prod"}, want{"processes": 16, "socket": []string{":2"}}},
		{"flag after ini overrides", []string{main, "-p", "9"}, want{"processes": 9}},
		{"flag before ini is overridden", []string{"-p", "9", main}, want{"processes": 2}},
		{"empty section means [uwsgi]", []string{"--ini", other + ":"}, want{"processes": 2}},
		{"ini file after an optional-value flag", []string{"--chmod-socket", main, "--master", main}, want{"chmod-socket": "666", "master": true, "processes": 2}},
		{"include of an ini file", []string{"--include", other}, want{"processes": 2, "include": []string{other}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, nil)
			tt.want.check(t, c)
		})
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want want
	}{
		{"--name value", []string{"--processes", "4"}, nil, want{"processes": 4}},
		{"--name=value", []string{"--processes=4", "--env=A=1"}, nil, want{"processes": 4, "env": []string{"A=1"}}},
		{"bare boolean", []string{"--master", "--vacuum"}, nil, want{"master": true, "vacuum": true}},
		{"boolean =false", []string{"--master=false"}, nil, want{"master": false}},
		{"short with value", []string{"-p", "4", "-t", "30", "-R", "100", "-s", "/tmp/a.sock"}, nil,
			want{"processes": 4, "harakiri": 30, "max-requests": 100, "socket": []string{"/tmp/a.sock"}}},
		{"short attached value", []string{"-p4", "-b8192"}, nil, want{"processes": 4, "buffer-size": 8192}},
		{"combined short booleans", []string{"-ML"}, nil, want{"master": true, "disable-logging": true}},
		{"combined booleans then value", []string{"-MLp", "3"}, nil, want{"master": true, "disable-logging": true, "processes": 3}},
		{"optional value flag stays bare", []string{"--chmod-socket", "--master"}, nil, want{"chmod-socket": "666", "master": true}},
		{"optional value as next argument", []string{"--chmod-socket", "664", "--vacuum"}, nil, want{"chmod-socket": "664", "vacuum": true}},
		{"boolean as next argument", []string{"--master", "false", "--vacuum", "yes", "-L", "0"}, nil, want{"master": false, "vacuum": true, "disable-logging": false}},
		{"short optional value as next argument", []string{"-C", "600"}, nil, want{"chmod-socket": "600"}},
		{"optional value given with =", []string{"--chmod-socket=660"}, nil, want{"chmod-socket": "660"}},
		{"short optional value", []string{"-C660"}, nil, want{"chmod-socket": "660"}},
		{"short optional bare", []string{"-C"}, nil, want{"chmod-socket": "666"}},
		{"value starting with dash", []string{"--harakiri", "-1"}, nil, want{"harakiri": -1}},
		{"underscore flag", []string{"--max_requests", "5"}, nil, want{"max-requests": 5}},
		{"env var", nil, []string{"UWSGI_MAX_REQUESTS=50", "HOME=/root", "UWSGI_MASTER=1"}, want{"max-requests": 50, "master": true}},
		{"env first, then args", []string{"--max-requests", "60"}, []string{"UWSGI_MAX_REQUESTS=50"}, want{"max-requests": 60}},
		{"env and args lists accumulate", []string{"--socket", ":2"}, []string{"UWSGI_SOCKET=:1"}, want{"socket": []string{":1", ":2"}}},
		{"uWSGI internal env ignored", nil, []string{"UWSGI_RELOADS=3", "UWSGI_ORIGINAL_PROC_NAME=x"}, want{}},
		{"-- ends options", []string{"--master", "--"}, nil, want{"master": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, tt.env)
			tt.want.check(t, c)
			if len(c.Notices()) > 0 && !strings.Contains(tt.name, "underscore") {
				t.Errorf("unexpected notices %q", c.Notices())
			}
		})
	}
}

func TestNotices(t *testing.T) {
	tests := []struct {
		name    string
		content string
		env     []string
		want    [][]string // parts each expected notice contains
	}{
		{"underscore key once", "[uwsgi]\ncpu_affinity = 1\ncpu_affinity = 2\n", nil,
			[][]string{{"cpu_affinity read as cpu-affinity", "app.ini:2"}}},
		{"unknown key named with file", "[uwsgi]\nprocesess = 4\n", nil,
			[][]string{{"unknown option procesess", "app.ini:2"}}},
		{"unsupported option", "[uwsgi]\nuid = www-data\nhook-asap = exec:true\n", nil,
			[][]string{{"option uid is a uWSGI option gouwsgi does not support; ignored", "app.ini:2"},
				{"option hook-asap is a uWSGI option gouwsgi does not support; ignored"}}},
		{"unknown env var", "[uwsgi]\n", []string{"UWSGI_FROBNICATE=1"},
			[][]string{{"unknown option frobnicate", "environment variable UWSGI_FROBNICATE"}}},
		{"unset env in $(VAR)", "[uwsgi]\nchdir = $(NOPE_NOT_SET)\n", nil,
			[][]string{{"NOPE_NOT_SET is not set"}}},
		{"unclosed block", "[uwsgi]\nif-env = X\nprocesses = 2\n", nil,
			[][]string{{"if-env block opened at", "never closed"}}},
		{"used placeholder is silent", "[uwsgi]\nbase = /srv\nchdir = %(base)/app\n", nil, nil},
		{"explicit placeholders are silent", "[uwsgi]\nset-placeholder = a=1\nset-ph = b=2\nset = c=3\n", nil, nil},
		{"no-effect options are silent", "[uwsgi]\nplugins = python3\nplugin = router_cache\nenable-threads\nthunder-lock\nlazy\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadINI(t, tt.content, tt.env...)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Notices()) != len(tt.want) {
				t.Errorf("notices = %q, want %d", c.Notices(), len(tt.want))
			}
			for _, parts := range tt.want {
				if !hasNotice(c, parts...) {
					t.Errorf("no notice with %q in %q", parts, c.Notices())
				}
			}
		})
	}
	t.Run("unsupported options are not stored", func(t *testing.T) {
		c, err := loadINI(t, "[uwsgi]\nuid = www-data\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.IsSet("uid") {
			t.Error("uid is set")
		}
	})
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.ini", "[uwsgi]\nmaster = true\n")
	loop := writeFile(t, dir, "loop.ini", "[uwsgi]\nini = "+filepath.Join(dir, "loop.ini")+"\n")
	tests := []struct {
		name    string
		args    []string
		content string // if set, written as app.ini and loaded with --ini
		env     []string
		is      error
		parts   []string
	}{
		{name: "non-integer", content: "[uwsgi]\nprocesses = four\n", is: ErrBadValue, parts: []string{"processes", `"four"`, "app.ini:2"}},
		{name: "non-integer flag", args: []string{"--harakiri", "10s"}, is: ErrBadValue, parts: []string{"harakiri", `"10s"`, "command line"}},
		{name: "non-integer env", env: []string{"UWSGI_LISTEN=lots"}, is: ErrBadValue, parts: []string{"listen", `"lots"`, "UWSGI_LISTEN"}},
		{name: "bad boolean", content: "[uwsgi]\nmaster = maybe\n", is: ErrBadValue, parts: []string{"master", `"maybe"`}},
		{name: "missing file", args: []string{"--ini", filepath.Join(dir, "nope.ini")}, parts: []string{"nope.ini", "no such file"}},
		{name: "missing section", args: []string{"--ini", good + ":prod"}, is: ErrBadValue, parts: []string{"good.ini", "[prod]"}},
		{name: "missing default section", content: "[app]\nmaster\n", is: ErrBadValue, parts: []string{"app.ini", "[uwsgi]"}},
		{name: "directory as ini", args: []string{"--ini", dir + "/x.ini:"}, parts: []string{"x.ini"}},
		{name: "not a regular file", args: []string{"--ini", "/dev/null"}, parts: []string{"/dev/null", "not a regular file"}},
		{name: "include loop", args: []string{"--ini", loop}, parts: []string{"loop.ini", "levels deep"}},
		{name: "section of no previous file", args: []string{"--ini", ":extra"}, parts: []string{"no previous ini file"}},
		{name: "unknown flag", args: []string{"--frobnicate", "1"}, is: ErrUnknownOption, parts: []string{"--frobnicate"}},
		{name: "unknown short flag", args: []string{"-Z"}, is: ErrUnknownOption, parts: []string{"-Z"}},
		{name: "flag without value", args: []string{"--processes"}, is: ErrBadValue, parts: []string{"--processes needs a value"}},
		{name: "short flag without value", args: []string{"-p"}, is: ErrBadValue, parts: []string{"-p", "processes", "needs a value"}},
		{name: "stray argument", args: []string{"--processes", "4", "true"}, is: ErrBadValue, parts: []string{`"true"`, "--flag=true"}},
		{name: "bad optional boolean", args: []string{"--master", "maybe"}, is: ErrBadValue, parts: []string{`"maybe"`}},
		{name: "stray non-ini file", args: []string{"app.py"}, is: ErrBadValue, parts: []string{`"app.py"`}},
		{name: "math with unknown name", content: "[uwsgi]\nprocesses = %(cores * 2)\n", is: ErrBadValue, parts: []string{"processes", `"cores"`, "app.ini:2"}},
		{name: "math ending in operator", content: "[uwsgi]\nprocesses = %(4 *)\n", is: ErrBadValue, parts: []string{"ends with an operator"}},
		{name: "unexpanded placeholder in int", content: "[uwsgi]\nthreads = %(%k)\n", is: ErrBadValue, parts: []string{"threads", "%("}},
		{name: "self-referencing placeholder", content: "[uwsgi]\na = x%(a)\nchdir = %(a)\n", is: ErrBadValue, parts: []string{"does not end"}},
		{name: "set-placeholder on an option", content: "[uwsgi]\nset-placeholder = processes=3\n", is: ErrBadValue, parts: []string{"processes", "already an option"}},
		{name: "set without =", content: "[uwsgi]\nset = foo\n", is: ErrBadValue, parts: []string{"name=value"}},
		{name: "missing @(file)", content: "[uwsgi]\nchdir = @(/nonexistent/x)\n", parts: []string{"@(/nonexistent/x)", "chdir", "app.ini:2"}},
		{name: "@(exec://)", content: "[uwsgi]\nchdir = @(exec://pwd)\n", is: ErrBadValue, parts: []string{"exec://"}},
		{name: "strict unknown key", content: "[uwsgi]\nstrict\nprocesess = 4\n", is: ErrUnknownOption, parts: []string{"procesess", "app.ini:3"}},
		{name: "unresolved placeholder in int", args: []string{"--strict", "--set", "x=1", "--processes", "%(y)"}, is: ErrBadValue, parts: []string{"processes"}},
		{name: "strict unsupported option", content: "[uwsgi]\nuid = www\nstrict = true\n", is: ErrUnsupportedOption, parts: []string{"uid", "app.ini:2"}},
		{name: "if-plugin", content: "[uwsgi]\nif-plugin = python3\nprocesses = 2\nendif\n", is: ErrUnsupportedOption, parts: []string{"if-plugin", "app.ini:2"}},
		{name: "yaml", args: []string{"--yaml", "app.yml"}, is: ErrUnsupportedOption, parts: []string{"yaml", "command line"}},
		{name: "include of non-ini", content: "[uwsgi]\ninclude = x.json\n", is: ErrUnsupportedOption, parts: []string{"x.json", ".ini"}},
		{name: "nested logic", content: "[uwsgi]\nif-env = HOME\nfor = a b\nendfor\nendif\n", env: []string{"HOME=/"}, is: ErrBadValue, parts: []string{"for", "does not nest"}},
		{name: "for-times not a number", content: "[uwsgi]\nfor-times = many\nsocket = :%(_)\nendfor\n", is: ErrBadValue, parts: []string{"for-times"}},
		{name: "for-times too large", content: "[uwsgi]\nfor-times = 100000000\nsocket = :%(_)\nendfor\n", is: ErrBadValue, parts: []string{"for-times"}},
		{name: "bad hostname regexp", content: "[uwsgi]\nif-hostname-match = (\nmaster\nendif\n", is: ErrBadValue, parts: []string{"if-hostname-match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.content != "" {
				args = append([]string{"--ini", writeFile(t, t.TempDir(), "app.ini", tt.content)}, args...)
			}
			c, err := Load(args, tt.env)
			if err == nil {
				t.Fatalf("Load succeeded (notices %q), want an error", c.Notices())
			}
			t.Logf("error: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
		})
	}
}

func TestStrictAllowsPlaceholders(t *testing.T) {
	c, err := loadINI(t, "[uwsgi]\nstrict\nbase = /srv\nset-placeholder = n=2\nchdir = %(base)\nprocesses = %(n)\nplugins = python3\n")
	if err != nil {
		t.Fatal(err)
	}
	want{"chdir": "/srv", "processes": 2, "strict": true}.check(t, c)
}

func TestAccessors(t *testing.T) {
	c := mustLoad(t, []string{"--processes", "3", "--socket", ":1", "--socket", ":2"}, nil)
	if !c.IsSet("processes") || !c.IsSet("workers") || c.IsSet("threads") {
		t.Error("IsSet wrong")
	}
	if got := c.List("threads"); got != nil {
		t.Errorf("List of unset option = %q, want nil", got)
	}
	if got := c.Str("uwsgi-socket"); got != ":2" {
		t.Errorf("Str(socket) = %q, want the last value", got)
	}
	l := c.List("socket")
	l[0] = "changed"
	if c.List("socket")[0] != ":1" {
		t.Error("List returned the internal slice")
	}

	setTests := []struct {
		name   string
		values []string
		ok     bool
		want   want
	}{
		{"processes", []string{"7"}, true, want{"processes": 7}},
		{"workers", []string{"x"}, false, want{"processes": 7}},
		{"master", []string{""}, true, want{"master": true}},
		{"master", []string{"off"}, true, want{"master": false}},
		{"socket", []string{"/a", "/b"}, true, want{"socket": []string{"/a", "/b"}}},
		{"socket", nil, true, want{"socket": []string(nil)}},
		{"processes", nil, true, want{"processes": 1}},
		{"no-such-option", []string{"1"}, false, want{}},
	}
	for _, tt := range setTests {
		err := c.Set(tt.name, tt.values...)
		if (err == nil) != tt.ok {
			t.Errorf("Set(%q, %q) error = %v, want ok=%v", tt.name, tt.values, err, tt.ok)
		}
		tt.want.check(t, c)
	}

	defer func() {
		if recover() == nil {
			t.Error("Str of an unknown option did not panic")
		}
	}()
	c.Str("no-such-option")
}

func TestNoticesOrderIsStable(t *testing.T) {
	content := "[uwsgi]\nzzz = 1\naaa = 2\ncpu_affinity = 1\nuid = x\n"
	first, err := loadINI(t, content)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := loadINI(t, content)
		if err != nil {
			t.Fatal(err)
		}
		// Paths differ per temp dir; compare the shape.
		if len(again.Notices()) != len(first.Notices()) || !slices.EqualFunc(again.Notices(), first.Notices(), func(a, b string) bool {
			return strings.Fields(a)[0] == strings.Fields(b)[0]
		}) {
			t.Fatalf("notices changed order: %q vs %q", again.Notices(), first.Notices())
		}
	}
}

func TestEntriesKeepInterleaving(t *testing.T) {
	c, err := loadINI(t, "[uwsgi]\nroute-label = a\nroute = ^/x last:\nmaster = True\nuid = nobody\nfoo = bar\n"+
		"route-if = equal:${PATH_INFO};/y break:403\nroute-label = b\nchdir = %(foo)\n")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Entries()
	want := []Entry{
		{"ini", ""}, // replaced below: the path is per test
		{"route-label", "a"}, {"route", "^/x last:"}, {"master", "true"},
		{"route-if", "equal:${PATH_INFO};/y break:403"}, {"route-label", "b"}, {"chdir", "bar"},
	}
	if len(got) > 0 {
		want[0].Value = got[0].Value
	}
	if !slices.Equal(got, want) {
		t.Errorf("Entries() = %q, want %q", got, want)
	}
}
