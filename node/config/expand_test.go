package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMagicVariables(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "site", "conf")
	path := writeFile(t, dir, "app.prod.ini", "[uwsgi]\n[web]\n")
	host, _ := os.Hostname()
	cwd, _ := os.Getwd()
	parts := strings.Split(strings.Trim(dir, "/"), "/")

	tests := []struct {
		magic, want string
	}{
		{"%d", dir + "/"},
		{"%D", dir + "/"},
		{"%p", path},
		{"%P", path},
		{"%s", "app.prod.ini"},
		{"%n", "app.prod"},
		{"%N", "app.prod"},
		{"%e", "ini"},
		{"%c", "conf"},
		{"%o", path + ":web"},
		{"%x", "web"},
		{"%0", parts[0]},
		{"%1", parts[1]},
		{"%h", host},
		{"%v", cwd},
		{"%k", strconv.Itoa(runtime.NumCPU())},
		{"%u", strconv.Itoa(os.Getuid())},
		{"%g", strconv.Itoa(os.Getgid())},
		{"%j", djb33xHex(path)},
		{"%V", Version},
		{"100%%", "100%"},
		{"%z", ""},
		{"a%", "a%"},
		{"50% off", "50% off"},
		{"%é", "%é"},
		{"%dlogs/%n.log", dir + "/logs/app.prod.log"},
	}
	for _, tt := range tests {
		t.Run(tt.magic, func(t *testing.T) {
			writeFile(t, dir, "app.prod.ini", "[uwsgi]\n[web]\nprocname = "+tt.magic+"\n")
			c := mustLoad(t, []string{"--ini", path + ":web"}, nil)
			if got := c.Str("procname"); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.magic, got, tt.want)
			}
		})
	}

	t.Run("%t is the start time", func(t *testing.T) {
		writeFile(t, dir, "app.prod.ini", "[uwsgi]\nprocname = %t %T\n")
		before := time.Now()
		c := mustLoad(t, []string{"--ini", path}, nil)
		f := strings.Fields(c.Str("procname"))
		sec, err1 := strconv.ParseInt(f[0], 10, 64)
		us, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || sec < before.Unix() || sec > time.Now().Unix() || us/1_000_000 != sec {
			t.Errorf("%%t %%T = %q", c.Str("procname"))
		}
	})

	t.Run("variables follow the file they are in", func(t *testing.T) {
		inner := writeFile(t, filepath.Join(dir, "inc"), "inner.ini", "[uwsgi]\nsocket = %n\n")
		writeFile(t, dir, "app.prod.ini", "[uwsgi]\nsocket = %n\nini = "+inner+"\nsocket = %n\n")
		c := mustLoad(t, []string{"--ini", path}, nil)
		want{"socket": []string{"app.prod", "inner", "app.prod"}}.check(t, c)
	})

	t.Run("command-line values are not magic", func(t *testing.T) {
		c := mustLoad(t, []string{"--procname", "%n"}, nil)
		want{"procname": "%n"}.check(t, c)
	})
}

func TestDjb33xHex(t *testing.T) {
	// Reference values computed with uWSGI's djb33x_hash and
	// uwsgi_str_to_hex on a little-endian machine.
	h := uint32(5381)
	for _, c := range []byte("/a") {
		h = ((h << 5) + h) ^ uint32(c)
	}
	want := fmt.Sprintf("%02X%02X%02X%02X", byte(h), byte(h>>8), byte(h>>16), byte(h>>24))
	if got := djb33xHex("/a"); got != want {
		t.Errorf("djb33xHex(/a) = %s, want %s", got, want)
	}
	if got := djb33xHex(""); got != "05150000" {
		t.Errorf("djb33xHex(\"\") = %s, want 05150000 (5381 little-endian)", got)
	}
}

func TestMath(t *testing.T) {
	tests := []struct {
		expr, want string
	}{
		{"%(2 + 3)", "5"},
		{"%(2 + 3 * 4)", "20"}, // left to right, no precedence
		{"%(10 / 3)", "3"},
		{"%(10 / 0)", "0"},
		{"%(7 - 10)", "-3"},
		{"%(5 ++)", "6"},
		{"%(5 --)", "4"},
		{"%(5 ++ ++ * 2)", "14"},
		{"%(procs cores + 2)", "30"}, // uWSGI's own example: "2" "8" -> "28" + 2
		{"%(procs cores)", "28"},
		{"%(1 2 3)", "123"},
		{"%(name 1)", "web1"},
		{"%(name + 1)", "1"}, // strtoll("web") = 0
		{"%(9223372036854775807 + 1)", "-9223372036854775808"},
		{"%(99999999999999999999 + 0)", "9223372036854775807"}, // strtoll clamps
		{"%(  2   +   2  )", "4"},
		{"x%(2 * 2)y%(1 + 1)", "x4y2"},
		{"%(neg + 1)", "-4"},
	}
	base := "[uwsgi]\nprocs = 2\ncores = 8\nname = web\nneg = -5\n"
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := loadINI(t, base+"procname = "+tt.expr+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Str("procname"); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestStrtoll(t *testing.T) {
	tests := map[string]int64{"": 0, "12": 12, "  -7x": -7, "+3": 3, "abc": 0, "-9223372036854775808": -9223372036854775808,
		"-99999999999999999999": -9223372036854775808, "9223372036854775808": 9223372036854775807}
	for in, want := range tests {
		if got := strtoll(in); got != want {
			t.Errorf("strtoll(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    want
		ph      map[string]string
	}{
		{"unknown key", "[uwsgi]\nbase = /srv\nchdir = %(base)/app\n", want{"chdir": "/srv/app"}, map[string]string{"base": "/srv"}},
		{"defined after use", "[uwsgi]\nchdir = %(base)\nbase = /late\n", want{"chdir": "/late"}, nil},
		{"option value", "[uwsgi]\nprocesses = 4\nthreads = %(processes)\n", want{"threads": 4}, map[string]string{"processes": "4", "workers": "4"}},
		{"option by alias", "[uwsgi]\nworkers = 3\nthreads = %(processes)\nlisten = %(workers)\n", want{"threads": 3, "listen": 3}, nil},
		{"first value wins, as in uWSGI", "[uwsgi]\nprocesses = 2\nprocesses = 9\nthreads = %(processes)\n", want{"processes": 9, "threads": 2}, nil},
		{"set-placeholder", "[uwsgi]\nset-placeholder = port=8000\nhttp = :%(port)\n", want{"http": ":8000"}, map[string]string{"port": "8000"}},
		{"set-ph", "[uwsgi]\nset-ph = n=3\nprocesses = %(n)\n", want{"processes": 3}, nil},
		{"set on an option", "[uwsgi]\nset = processes=5\n", want{"processes": 5}, nil},
		{"set on a placeholder", "[uwsgi]\nset = dir=/x\nchdir = %(dir)\n", want{"chdir": "/x"}, nil},
		{"chained placeholders", "[uwsgi]\na = %(b)/a\nb = %(c)/b\nc = /c\nchdir = %(a)\n", want{"chdir": "/c/b/a"}, map[string]string{"a": "/c/b/a"}},
		{"unknown name left as is", "[uwsgi]\nlogformat = %(method) %(uri) => %(status)\n", want{"logformat": "%(method) %(uri) => %(status)"}, nil},
		{"empty parens left", "[uwsgi]\nprocname = a%()b\n", want{"procname": "a%()b"}, nil},
		{"unclosed left", "[uwsgi]\nprocname = a%(b\n", want{"procname": "a%(b"}, nil},
		{"%% before (", "[uwsgi]\nx = 1\nprocname = %%(x)\n", want{"procname": "1"}, nil},
		{"route vars untouched", "[uwsgi]\nroute = ^/ cache:key=${REQUEST_URI},name=c\n", want{"route": []string{"^/ cache:key=${REQUEST_URI},name=c"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadINI(t, tt.content)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.check(t, c)
			for k, v := range tt.ph {
				if got, ok := c.Placeholder(k); !ok || got != v {
					t.Errorf("Placeholder(%q) = %q, %v; want %q", k, got, ok, v)
				}
			}
			if _, ok := c.Placeholder("never-defined"); ok {
				t.Error("Placeholder of an undefined name is ok")
			}
		})
	}
}

func TestEnvAndFileExpansion(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", "s3cret\n")
	crlf := writeFile(t, dir, "crlf", "line\r\n")
	two := writeFile(t, dir, "two", "a\nb\n")
	env := []string{"APP_HOME=/srv/app", "EMPTY=", "PORT=9000"}
	tests := []struct {
		name, value, want string
	}{
		{"env", "$(APP_HOME)/x", "/srv/app/x"},
		{"env default unset", "$(NOPE:-/def)", "/def"},
		{"env default empty", "$(EMPTY:-/def)", "/def"},
		{"env dash default unset", "$(NOPE-/def)", "/def"},
		{"env dash default empty keeps empty", "$(EMPTY-/def)", ""},
		{"env unset left", "$(NOPE)", "$(NOPE)"},
		{"file", "@(" + secret + ")", "s3cret"},
		{"file crlf", "@(" + crlf + ")", "line"},
		{"file keeps inner newline", "@(" + two + ")", "a\nb"},
		{"env then file", "@($(SECRET_DIR)/secret)", "s3cret"},
		{"env then placeholder", "%(port_$(PORT))", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadINI(t, "[uwsgi]\nport_9000 = ok\nprocname = "+tt.value+"\n", append(env, "SECRET_DIR="+dir)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Str("procname"); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
	t.Run("command line values expand", func(t *testing.T) {
		c := mustLoad(t, []string{"--chdir", "$(APP_HOME)", "--set", "p=4", "--processes", "%(p)"}, env)
		want{"chdir": "/srv/app", "processes": 4}.check(t, c)
	})
}

func TestConfigLogic(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "exists.txt", "one\ntwo\r\n\nthree")
	writeFile(t, dir, "sub/a.py", "")
	host, _ := os.Hostname()
	env := []string{"DEPLOY=prod", "EMPTYVAR="}
	tests := []struct {
		name, body string
		want       want
	}{
		{"if-env set", "if-env = DEPLOY\nprocname = %(_)\nendif", want{"procname": "prod"}},
		{"if-env value match", "if-env = DEPLOY=prod\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-env value mismatch", "if-env = DEPLOY=dev\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-env unset", "if-env = NOPE\nprocesses = 8\nend-if\nthreads = 2", want{"processes": 1, "threads": 2}},
		{"ifenv alias", "ifenv = DEPLOY\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-not-env unset", "if-not-env = NOPE\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-not-env set", "if-not-env = DEPLOY\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-not-env other value", "if-not-env = DEPLOY=dev\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-exists", "if-exists = " + file + "\nprocname = %(_)\nendif", want{"procname": file}},
		{"if-not-exists", "if-not-exists = " + file + "\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-file on dir", "if-file = " + dir + "\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-dir", "if-dir = " + dir + "\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-not-dir on file", "if-not-dir = " + file + "\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-opt", "master = true\nif-opt = master\nprocname = m%(_)\nendif", want{"procname": "mtrue"}},
		{"if-opt value", "x = 1\nif-opt = x=2\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-not-opt", "if-not-opt = master\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-hostname", "if-hostname = " + host + "\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-not-hostname", "if-not-hostname = " + host + "\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-hostname-match", "if-hostname-match = ^.*$\nprocesses = 8\nendif", want{"processes": 8}},
		{"if-reload never", "if-reload\nprocesses = 8\nendif", want{"processes": 1}},
		{"if-not-reload always", "if-not-reload\nprocesses = 8\nendif", want{"processes": 8}},
		{"for", "for = 8001 8002  8003\nsocket = :%(_)\nendfor", want{"socket": []string{":8001", ":8002", ":8003"}}},
		{"for-times", "for-times = 3\nsocket = /tmp/%(_).sock\nend-for", want{"socket": []string{"/tmp/1.sock", "/tmp/2.sock", "/tmp/3.sock"}}},
		{"for-times zero", "for-times = 0\nsocket = x\nendfor", want{"socket": []string(nil)}},
		{"for-readline", "for-readline = " + file + "\npythonpath = %(_)\nendfor", want{"pythonpath": []string{"one", "two", "", "three"}}},
		{"for-glob", "for-glob = " + dir + "/s*\npythonpath = %(_)\nendfor", want{"pythonpath": []string{dir + "/sub/"}}},
		{"for-glob no match", "for-glob = " + dir + "/none*\npythonpath = %(_)\nendfor", want{"pythonpath": []string{dir + "/none*"}}},
		{"lines after block apply", "for = a\nenv = X=%(_)\nendfor\nenv = Y=1", want{"env": []string{"X=a", "Y=1"}}},
		{"endif without if", "endif\nprocesses = 2", want{"processes": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadINI(t, "[uwsgi]\n"+tt.body+"\n", env...)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.check(t, c)
		})
	}
}
