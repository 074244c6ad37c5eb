package benchserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyTimeout is how long WaitReady polls before giving up; a variable so that tests can shorten it.
var readyTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it kills the process group.
const stopGrace = 10 * time.Second

// Process is one started server process: its own process group, stdout and stderr in a log file.
type Process struct {
	cmd *exec.Cmd
	log *os.File
}

// Start starts cmd in its own process group with its stdout and stderr written to logPath.
func Start(cmd *exec.Cmd, logPath string) (*Process, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating server log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	return &Process{cmd: cmd, log: log}, nil
}

// LogName is the name of the log file StartIn and StartStock write in the server's directory.
const LogName = "server.log"

// StartIn starts bin with args (killed when ctx is done) with its output in dir/server.log.
func StartIn(ctx context.Context, dir, bin string, args ...string) (*Process, error) {
	return Start(exec.CommandContext(ctx, bin, args...), filepath.Join(dir, LogName))
}

// WaitReady polls url until it answers one of the status codes (200 when none are given), for up to 30s. The
// error carries the process's output so far.
func (p *Process) WaitReady(url string, codes ...int) error {
	if len(codes) == 0 {
		codes = []int{http.StatusOK}
	}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if slices.Contains(codes, res.StatusCode) {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(p.log.Name())
	return fmt.Errorf("not answering %s within %s; output:\n%s", url, readyTimeout, out)
}

// WaitRegistry waits until addr answers /v2/ with 200 or 401, as a registry with or without auth does.
func (p *Process) WaitRegistry(addr string) error {
	return p.WaitReady("http://"+addr+"/v2/", http.StatusOK, http.StatusUnauthorized)
}

// Stop sends SIGTERM to the process group, waits up to 10s for the process to exit, then kills the group. It is a
// no-op on a nil or already stopped Process.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	_ = p.log.Close()
	p.cmd = nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// CPUTime is the user+system CPU time the process has used, from /proc/PID/stat (clock ticks of 10ms).
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("parsing /proc/%d/stat", p.Pid())
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", p.Pid())
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", p.Pid())
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// Memory reads the process's peak (VmHWM) and current (VmRSS) resident set size in KiB from /proc/PID/status.
func (p *Process) Memory() (peakKB, curKB int64, err error) {
	peakKB, curKB, _, err = p.memory()
	return peakKB, curKB, err
}

// AnonKB is the process's resident anonymous memory (RssAnon: heap, stacks, what no file backs), the part of RSS
// that is its own; the rest is code and data mapped from files, shared with the page cache.
func (p *Process) AnonKB() (int64, error) {
	_, _, anon, err := p.memory()
	return anon, err
}

func (p *Process) memory() (peakKB, curKB, anonKB int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(p.Pid()) + "/status")
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			peakKB = n
		case "VmRSS":
			curKB = n
		case "RssAnon":
			anonKB = n
		}
	}
	return peakKB, curKB, anonKB, sc.Err()
}

// FreeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FileServerFlag is the argument a driver re-executes itself with to become a plain http.FileServer:
// `DRIVER -fileserver ADDR DIR` (see ServeFilesIfAsked).
const FileServerFlag = "-fileserver"

// ServeFilesIfAsked serves DIR with http.FileServer on ADDR until signalled, and reports true, when the process was
// started as `DRIVER -fileserver ADDR DIR`; otherwise it reports false at once. A driver's main calls it first.
func ServeFilesIfAsked() bool {
	if len(os.Args) != 4 || os.Args[1] != FileServerFlag {
		return false
	}
	l, err := net.Listen("tcp", os.Args[2])
	if err == nil {
		err = http.Serve(l, http.FileServer(http.Dir(os.Args[3])))
	}
	fmt.Fprintln(os.Stderr, "fileserver:", err)
	os.Exit(1)
	return true
}

// StartFileServer re-executes this driver as an http.FileServer of dir on addr, its output in logDir/server.log.
func StartFileServer(ctx context.Context, logDir, addr, dir string) (*Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return StartIn(ctx, logDir, self, FileServerFlag, addr, dir)
}
