package benchserver

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProcess starts this test binary as a small HTTP server (TestHelperServer), waits for it, reads its CPU time and
// memory, and stops it.
func TestProcess(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$")
	cmd.Env = append(os.Environ(), "BENCHSERVER_HELPER_ADDR="+addr)
	p, err := Start(cmd, filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitRegistry(addr); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CPUTime(); err != nil {
		t.Errorf("CPUTime: %v", err)
	}
	peak, cur, err := p.Memory()
	if err != nil || peak <= 0 || cur <= 0 || cur > peak {
		t.Errorf("Memory() = %d, %d, %v; want 0 < current <= peak", peak, cur, err)
	}
	pid := p.Pid()
	start := time.Now()
	p.Stop()
	if time.Since(start) > stopGrace {
		t.Errorf("Stop took %s; the server should exit on SIGTERM", time.Since(start))
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("process %d still exists after Stop", pid)
	}
	p.Stop() // a second Stop is a no-op
}

func TestWaitReadyReportsOutput(t *testing.T) {
	defer func(d time.Duration) { readyTimeout = d }(readyTimeout)
	readyTimeout = time.Second
	cmd := exec.Command("sh", "-c", "echo starting-up; sleep 60")
	p, err := Start(cmd, filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitRegistry(addr)
	if err == nil || !strings.Contains(err.Error(), "starting-up") || !strings.Contains(err.Error(), addr+"/v2/ within 1s") {
		t.Errorf("WaitRegistry error = %v; want one naming the URL with the process output", err)
	}
}

// TestHelperServer is the server TestProcess runs; it does nothing in a normal test run.
func TestHelperServer(t *testing.T) {
	addr := os.Getenv("BENCHSERVER_HELPER_ADDR")
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
}
