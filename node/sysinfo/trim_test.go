package sysinfo

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTrimBinary: the test binary's own read-only mappings are advised,
// its resident size drops, and the process keeps running (the pages fault
// back in on use).
func TestTrimBinary(t *testing.T) {
	before, _ := Memory(os.Getpid())
	n, err := TrimBinary()
	if err != nil {
		t.Fatalf("TrimBinary: %v", err)
	}
	if n == 0 {
		t.Fatal("no mapping of the executable was advised")
	}
	after, _ := Memory(os.Getpid())
	if after >= before {
		t.Fatalf("rss %d bytes before, %d after: nothing was paged out", before, after)
	}
}

// rssFile returns the RssFile of pid in KiB, from /proc/PID/status.
func rssFile(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read status of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("RssFile of %d: %q: %v", pid, line, err)
			}
			return kb
		}
	}
	t.Fatalf("no RssFile in the status of %d", pid)
	return 0
}

// TestPageOut: a child maps a file nobody else maps and reads all of it;
// paging it out from here drops those pages from its resident size, and
// the child still reads the same bytes afterwards.
func TestPageOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("process_madvise of another process needs CAP_SYS_NICE; run as root")
	}
	const size = 8 << 20
	data := filepath.Join(t.TempDir(), "data")
	content := bytes.Repeat([]byte("gouwsgi!"), size/8)
	if err := os.WriteFile(data, content, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
import mmap, sys
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
touch = lambda: sum(m[i] for i in range(0, len(m), 4096))
print(touch(), flush=True)
sys.stdin.readline()
print(touch(), flush=True)
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, data)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start python3: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child did not read its mapping: %v", err)
	}
	before := rssFile(t, cmd.Process.Pid)
	n, err := PageOut(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("PageOut: %v", err)
	}
	if n < size {
		t.Fatalf("advised %d bytes, less than the %d-byte mapping", n, size)
	}
	after := rssFile(t, cmd.Process.Pid)
	if before-after < size/1024*3/4 {
		t.Fatalf("RssFile %d KiB before, %d after: the %d KiB mapping was not paged out", before, after, size/1024)
	}
	if _, err := io.WriteString(stdin, "again\n"); err != nil {
		t.Fatal(err)
	}
	second, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child failed after the page-out: %v", err)
	}
	if first != second {
		t.Fatalf("child read %q before the page-out, %q after", first, second)
	}
}

// TestPageOutGone: a process that does not exist is an error naming it.
func TestPageOutGone(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	_, err := PageOut(cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("PageOut of exited pid %d: %v, want an error naming it", cmd.Process.Pid, err)
	}
}
