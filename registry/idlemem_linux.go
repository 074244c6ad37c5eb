package registry

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartupPages drops this process's mappings of its executable's read-only segments (code and constant
// data). One binary holds every subcommand, and starting it runs the package initialisation of all of them (the
// Kubernetes API scheme, the AWS SDK's endpoint tables, OpenTelemetry, ...), which faults in tens of MiB of the
// binary that serve never touches again; the kernel's fault-around maps neighbouring pages too. Those pages are
// file-backed and unmodified, so dropping them loses nothing: what the request path uses comes back from the page
// cache on first use. Writable segments are left alone.
func releaseStartupPages() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return err
	}
	spans, err := cleanExecutableSpans(exe)
	if err != nil {
		return err
	}
	for _, s := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, errno)
		}
	}
	return nil
}

type span struct{ start, end uintptr }

// cleanExecutableSpans lists the read-only mappings of exe (code, constant data) none of whose pages were ever
// written: a mapping with anonymous pages was modified after it was mapped (a dynamically linked binary's RELRO,
// relocated and then made read-only) and must keep its pages.
func cleanExecutableSpans(exe string) ([]span, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []span
	var cur *span // the mapping being read, while it is a candidate
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && len(fields) >= 5 {
			// A mapping header: 00400000-027ea000 r-xp 00000000 fd:00 1234   /path/to/exe
			if cur != nil {
				spans = append(spans, *cur)
			}
			cur = nil
			if len(fields) < 6 || fields[5] != exe || (fields[1] != "r-xp" && fields[1] != "r--p") {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				return nil, fmt.Errorf("parsing /proc/self/smaps line %q", line)
			}
			cur = &span{uintptr(start), uintptr(end)}
			continue
		}
		if cur != nil && fields[0] == "Anonymous:" && (len(fields) < 2 || fields[1] != "0") {
			cur = nil // written to: keep
		}
	}
	if cur != nil {
		spans = append(spans, *cur)
	}
	return spans, sc.Err()
}
