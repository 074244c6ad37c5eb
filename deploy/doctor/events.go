package doctor

import (
	"regexp"
	"strings"
)

// EventClass is what the kubelet's pull-failure text says went wrong, reduced to the causes doctor knows.
type EventClass string

// The classes of pull-failure messages, as produced by the kubelet from containerd's resolver errors.
const (
	EventNone         EventClass = ""              // no pull failure seen
	EventUnauthorized EventClass = "unauthorized"  // 401/403 from the registry or its token server
	EventNotFound     EventClass = "not-found"     // manifest (tag/digest) or repository unknown
	EventDNS          EventClass = "dns"           // the registry host does not resolve
	EventRefused      EventClass = "refused"       // nothing listens on the registry's port
	EventTimeout      EventClass = "timeout"       // no answer in time
	EventTLSUntrusted EventClass = "tls-untrusted" // certificate not trusted by the node
	EventHTTPServed   EventClass = "http-served"   // the node spoke HTTPS, the registry answered plain HTTP
	EventInvalidName  EventClass = "invalid-name"  // the image reference does not parse
	EventOther        EventClass = "other"         // a pull failed for a reason doctor does not recognise
)

// eventRules are tried in order; the first that matches wins. Transport errors come before HTTP statuses because a
// message such as "failed to do request: ... no such host" names no status, while "not found" must not be matched
// inside a DNS error.
var eventRules = []struct {
	class EventClass
	re    *regexp.Regexp
}{
	{EventInvalidName, regexp.MustCompile(`(?i)InvalidImageName|couldn't parse image (name|reference)|invalid reference format`)},
	{EventDNS, regexp.MustCompile(`(?i)no such host|no suitable address found|server misbehaving|Temporary failure in name resolution`)},
	{EventRefused, regexp.MustCompile(`(?i)connection refused|no route to host|network is unreachable`)},
	{EventHTTPServed, regexp.MustCompile(`(?i)server gave HTTP response to HTTPS client`)},
	{EventTLSUntrusted, regexp.MustCompile(`(?i)x509: |tls: failed to verify certificate|certificate signed by unknown authority|tls: handshake failure`)},
	{EventTimeout, regexp.MustCompile(`(?i)i/o timeout|context deadline exceeded|Client\.Timeout exceeded|TLS handshake timeout|connection reset by peer`)},
	{EventUnauthorized, regexp.MustCompile(`(?i)401 Unauthorized|403 Forbidden|\bunauthorized\b|authorization failed|no basic auth credentials|pull access denied|insufficient_scope|authentication required`)},
	{EventNotFound, regexp.MustCompile(`(?i)\bnot found\b|manifest unknown|name unknown|404 Not Found`)},
}

// ClassifyEvent reduces one kubelet/containerd pull-failure message to its EventClass. Messages that are not about a
// failed pull give EventNone.
func ClassifyEvent(msg string) EventClass {
	if strings.TrimSpace(msg) == "" {
		return EventNone
	}
	for _, r := range eventRules {
		if r.re.MatchString(msg) {
			return r.class
		}
	}
	if isPullFailure(msg) {
		return EventOther
	}
	return EventNone
}

// isPullFailure tells pull-failure texts from other pod events (Scheduled, Pulling, Started...).
func isPullFailure(msg string) bool {
	l := strings.ToLower(msg)
	return strings.Contains(l, "failed to pull") || strings.Contains(l, "errimagepull") ||
		strings.Contains(l, "back-off pulling image") || strings.Contains(l, "rpc error")
}

// hostInMessage returns the registry host a pull-failure message names ("pulling from host H", "dial tcp H:",
// "lookup H"), or "" when it names none.
func hostInMessage(msg string) string {
	for _, re := range hostPatterns {
		if m := re.FindStringSubmatch(msg); m != nil {
			return m[1]
		}
	}
	return ""
}

var hostPatterns = []*regexp.Regexp{
	regexp.MustCompile(`pulling from host (\S+) failed`),
	regexp.MustCompile(`(?:Head|Get|GET|HEAD) "https?://([^/"]+)/`),
	regexp.MustCompile(`lookup ([^\s:]+)`),
	regexp.MustCompile(`dial tcp ([^\s]+?):\s`),
}
