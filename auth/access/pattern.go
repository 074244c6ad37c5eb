package access

import (
	"fmt"
	"path"
	"strings"
)

// Pattern matches repository names segment by segment: "*" (and path.Match syntax) within one segment, "**" as a
// whole segment for any number of segments, none included. So "team-a/**" matches "team-a", "team-a/x" and
// "team-a/x/y"; "team-a/*" matches "team-a/x" only; "**" matches every repository.
type Pattern struct {
	text     string
	segments []string
}

// ParsePattern checks and compiles a repository pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("empty repository pattern")
	}
	if strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return Pattern{}, fmt.Errorf("repository pattern %q must not start or end with /", s)
	}
	segs := strings.Split(s, "/")
	for _, seg := range segs {
		switch {
		case seg == "":
			return Pattern{}, fmt.Errorf("repository pattern %q has an empty segment", s)
		case seg == "**":
		case strings.Contains(seg, "**"):
			return Pattern{}, fmt.Errorf("repository pattern %q: ** must be a whole segment, as in team-a/**", s)
		default:
			if _, err := path.Match(seg, ""); err != nil {
				return Pattern{}, fmt.Errorf("repository pattern %q: %w", s, err)
			}
			if strings.ContainsFunc(seg, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
				return Pattern{}, fmt.Errorf("repository pattern %q: repository names are lower-case", s)
			}
		}
	}
	return Pattern{text: s, segments: segs}, nil
}

// String is the pattern as written.
func (p Pattern) String() string { return p.text }

// Match reports whether the repository name matches the pattern.
func (p Pattern) Match(repo string) bool {
	if repo == "" {
		return false
	}
	return matchSegments(p.segments, strings.Split(repo, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegments(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
