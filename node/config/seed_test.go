package config

import (
	"runtime"
	"strconv"
	"testing"
)

// The configurations of /work/shared/seed/uwsgi-notes.txt, verbatim in
// testdata, and its interactive command line.
func TestSeedConfigs(t *testing.T) {
	cpus := runtime.NumCPU()
	tests := []struct {
		name        string
		args        []string
		want        want
		wantNotices [][]string
	}{
		{
			name: "route-cache ini",
			args: []string{"--ini", "testdata/seed-route-cache.ini"},
			want: want{
				"chdir": ".", "module": "mysite.wsgi:application", "master": true, "processes": 1,
				"stats": "/tmp/test_stat.sock", "http": ":9090", "harakiri": 8, "cpu-affinity": 1,
				"log-micros": true, "autoload": true,
				"cache2": []string{"name=mycache,items=300,hash=murmur2"},
				"route": []string{
					"^/feedback cache:key=${REQUEST_METHOD}${REQUEST_URI}${QUERY_STRING},name=mycache,content_type=application/json",
					"^/feedback cachestore:key=${REQUEST_METHOD}${REQUEST_URI}${QUERY_STRING},name=mycache,expires=10",
					"^/feedback log:hey i am printing $1",
				},
				"plugins": []string(nil),
			},
			wantNotices: [][]string{{"cpu_affinity read as cpu-affinity", "seed-route-cache.ini:11"}},
		},
		{
			name: "standard ini",
			args: []string{"testdata/seed-standard.ini"},
			want: want{
				"chdir": ".", "chmod-socket": "664", "module": "mysite.wsgi:application", "master": true,
				"processes": cpus * 4, "pidfile": "/tmp/seed-standard.pid",
				"socket": []string{"/tmp/seed-standard.sock"},
				"stats":  "/tmp/seed-standard_stat.sock",
				"vacuum": true, "harakiri": 50, "harakiri-verbose": true, "single-interpreter": true,
				"memory-report": true, "max-requests": 10000, "listen": 8192, "log-truncate": true,
				"disable-logging": true, "daemonize": "/home/log/uwsgi/seed-standard_uwsgi.log",
				"procname-master": "uwsgi --ini seed-standard.ini (master)",
				"procname":        "uwsgi --ini seed-standard.ini", "need-app": true,
				"cpu-affinity": 0, "so-keepalive": false, "max-worker-lifetime": 0,
				"logformat": "",
			},
		},
		{
			name: "interactive command",
			args: []string{"--chdir", ".", "--file", "mysite/wsgi.py", "--callable", "application",
				"--master", "--processes", "1", "--http", ":9090", "--harakiri", "10"},
			want: want{
				"chdir": ".", "wsgi-file": "mysite/wsgi.py", "callable": "application", "master": true,
				"processes": 1, "http": ":9090", "harakiri": 10, "module": "",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, nil)
			tt.want.check(t, c)
			for _, parts := range tt.wantNotices {
				if !hasNotice(c, parts...) {
					t.Errorf("no notice with %q in %q", parts, c.Notices())
				}
			}
			// The seeds are real, working uWSGI configs: nothing in them
			// is unknown or unsupported.
			if n := len(c.Notices()); n != len(tt.wantNotices) {
				t.Errorf("notices = %q, want %d", c.Notices(), len(tt.wantNotices))
			}
		})
	}
}

// The seed's `processes = %(%k * 4)` is CPU-dependent; check the
// arithmetic itself does not depend on where the test runs.
func TestSeedProcessesMath(t *testing.T) {
	c, err := loadINI(t, "[uwsgi]\nprocesses = %(%k * 4)\nthreads = %(%k + 0)\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Str("processes"), strconv.Itoa(4*runtime.NumCPU()); got != want {
		t.Errorf("processes = %q, want %q", got, want)
	}
	if got, want := c.Int("threads"), runtime.NumCPU(); got != want {
		t.Errorf("threads = %d, want %d", got, want)
	}
}
