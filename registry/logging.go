package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/sirupsen/logrus"
)

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// ParseLogLevel turns debug, info, warn or error into a slog.Level.
func ParseLogLevel(s string) (slog.Level, error) {
	l, ok := logLevels[s]
	if !ok {
		return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// discardLogger is the library default: silent.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// distribution logs through the process-wide logrus standard logger. bridgeLogrus sends those entries to the slog
// logger of the most recently created Server instead of stderr. Distribution's per-request info lines ("authorized
// request", "response completed") are access-log chatter: they pass only at debug.
var (
	logrusOnce   sync.Once
	logrusTarget atomic.Pointer[slog.Logger]
)

func bridgeLogrus(logger *slog.Logger, level slog.Level) {
	logrusTarget.Store(logger)
	logrusOnce.Do(func() {
		std := logrus.StandardLogger()
		std.SetOutput(io.Discard)
		std.AddHook(logrusHook{})
	})
	lv := logrus.WarnLevel
	switch {
	case level <= slog.LevelDebug:
		lv = logrus.DebugLevel
	case level >= slog.LevelError:
		lv = logrus.ErrorLevel
	}
	logrus.SetLevel(lv)
}

type logrusHook struct{}

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (logrusHook) Fire(e *logrus.Entry) error {
	logger := logrusTarget.Load()
	if logger == nil {
		return nil
	}
	var level slog.Level
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		level = slog.LevelError
	case logrus.WarnLevel:
		level = slog.LevelWarn
	case logrus.InfoLevel:
		level = slog.LevelInfo
	default:
		level = slog.LevelDebug
	}
	if level == slog.LevelWarn && strings.HasPrefix(e.Message, "error authorizing context") &&
		strings.HasSuffix(e.Message, auth.ErrInvalidCredential.Error()) {
		level = slog.LevelDebug // a request without credentials: the first half of every login, not a problem
	}
	if e.Message == "response completed with error" {
		// Client errors (a HEAD for a blob not pushed yet is part of every push) are request outcomes, not faults.
		if status, ok := e.Data["http.response.status"].(int); ok && status < 500 {
			level = slog.LevelDebug
		}
	}
	ctx := context.Background()
	if !logger.Enabled(ctx, level) {
		return nil
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k == "go.version" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys)+1)
	attrs = append(attrs, slog.String("component", "distribution"))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, e.Data[k]))
	}
	logger.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// accessLog logs one line per request. It never logs headers, so credentials cannot leak through it.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// recoverPanics turns a panic in a handler into a logged 500 instead of a dropped connection and a lost process.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			http.Error(w, "internal server error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}
