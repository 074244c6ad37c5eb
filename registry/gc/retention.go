package gc

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Policy is a set of retention rules. A repository no rule matches keeps every tag. In a repository one or more rules
// match, a tag stays when any matching rule keeps it; the others are removed. What a kept tag references (its
// manifest, an index's children, their layers) is never collected, whatever other tags say.
type Policy struct {
	Rules []Rule `json:"rules"`
}

// Rule keeps, in the repositories its pattern matches, the tags that satisfy any of its conditions.
type Rule struct {
	// Name is shown in reports (default "rule N").
	Name string `json:"name,omitempty"`
	// Repositories is a pattern; "*" matches any characters, "/" included ("team/*", "*").
	Repositories string `json:"repositories"`
	// KeepLast keeps the N most recently pushed tags.
	KeepLast int `json:"keepLast,omitempty"`
	// KeepWithin keeps tags pushed within this long (a duration such as 720h).
	KeepWithin string `json:"keepWithin,omitempty"`
	// KeepTags keeps tags matching this regular expression (matched against the whole tag).
	KeepTags string `json:"keepTags,omitempty"`

	repo   *regexp.Regexp
	within time.Duration
	tags   *regexp.Regexp
}

// LoadPolicy reads a YAML (or JSON) policy file.
func LoadPolicy(path string) (Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("reading retention policy: %w", err)
	}
	var p Policy
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return Policy{}, fmt.Errorf("parsing retention policy %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("retention policy %s: %w", path, err)
	}
	return p, nil
}

// Validate compiles the rules and names every field that is wrong.
func (p *Policy) Validate() error {
	var errs []error
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule %d", i+1)
		}
		bad := func(field, format string, a ...any) {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): %s: %s", i, r.Name, field, fmt.Sprintf(format, a...)))
		}
		if r.Repositories == "" {
			bad("repositories", `is required (use "*" for every repository)`)
		} else {
			r.repo = regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(r.Repositories), `\*`, ".*") + "$")
		}
		if r.KeepLast < 0 {
			bad("keepLast", "must not be negative, got %d", r.KeepLast)
		}
		if r.KeepWithin != "" {
			d, err := time.ParseDuration(r.KeepWithin)
			if err != nil || d <= 0 {
				bad("keepWithin", "%q is not a positive duration such as 720h", r.KeepWithin)
			}
			r.within = d
		}
		if r.KeepTags != "" {
			re, err := regexp.Compile("^(?:" + r.KeepTags + ")$")
			if err != nil {
				bad("keepTags", "%v", err)
			}
			r.tags = re
		}
		if r.KeepLast == 0 && r.KeepWithin == "" && r.KeepTags == "" {
			bad("keepLast, keepWithin, keepTags", "a rule must keep something: set at least one (a rule that keeps nothing would remove every tag)")
		}
	}
	return errors.Join(errs...)
}

// Empty reports whether the policy has no rules.
func (p Policy) Empty() bool { return len(p.Rules) == 0 }

// matching are the rules that apply to repository name.
func (p Policy) matching(name string) []*Rule {
	var out []*Rule
	for i := range p.Rules {
		if r := &p.Rules[i]; r.repo != nil && r.repo.MatchString(name) {
			out = append(out, r)
		}
	}
	return out
}

// TagInfo is a tag and when it was last pushed.
type TagInfo struct {
	Name   string
	Pushed time.Time
}

// Removals returns the tags of repository name the policy removes (sorted), each with the names of the rules that
// matched and did not keep it.
func (p Policy) Removals(name string, tags []TagInfo, now time.Time) map[string][]string {
	rules := p.matching(name)
	if len(rules) == 0 {
		return nil
	}
	byAge := slices.Clone(tags)
	sort.SliceStable(byAge, func(i, j int) bool {
		if !byAge[i].Pushed.Equal(byAge[j].Pushed) {
			return byAge[i].Pushed.After(byAge[j].Pushed)
		}
		return byAge[i].Name < byAge[j].Name
	})
	kept := map[string]bool{}
	for _, r := range rules {
		for i, t := range byAge {
			if i < r.KeepLast || (r.within > 0 && now.Sub(t.Pushed) <= r.within) || (r.tags != nil && r.tags.MatchString(t.Name)) {
				kept[t.Name] = true
			}
		}
	}
	out := map[string][]string{}
	for _, t := range byAge {
		if kept[t.Name] {
			continue
		}
		for _, r := range rules {
			out[t.Name] = append(out[t.Name], r.Name)
		}
	}
	return out
}
