package access

import "testing"

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name, pattern, repo string
		want                bool
	}{
		{"all matches one segment", "**", "app", true},
		{"all matches nested", "**", "team-a/x/y", true},
		{"doublestar under team matches team itself", "team-a/**", "team-a", true},
		{"doublestar under team matches child", "team-a/**", "team-a/x", true},
		{"doublestar under team matches grandchild", "team-a/**", "team-a/x/y", true},
		{"doublestar under team not another team", "team-a/**", "team-b/x", false},
		{"doublestar under team not a prefix name", "team-a/**", "team-ab/x", false},
		{"star one level", "team-a/*", "team-a/x", true},
		{"star not the team itself", "team-a/*", "team-a", false},
		{"star not two levels", "team-a/*", "team-a/x/y", false},
		{"star inside segment", "team-*/app", "team-a/app", true},
		{"star inside segment does not cross slash", "team-*", "team-a/app", false},
		{"literal", "library/nginx", "library/nginx", true},
		{"literal other", "library/nginx", "library/redis", false},
		{"middle doublestar zero segments", "a/**/b", "a/b", true},
		{"middle doublestar many segments", "a/**/b", "a/x/y/b", true},
		{"middle doublestar wrong end", "a/**/b", "a/x/c", false},
		{"empty repo", "**", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
			}
			if got := p.Match(tt.repo); got != tt.want {
				t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.repo, got, tt.want)
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	for _, s := range []string{"", "/a", "a/", "a//b", "a**", "team-**/x", "Team/a", "a/[b"} {
		t.Run(s, func(t *testing.T) {
			if _, err := ParsePattern(s); err == nil {
				t.Errorf("ParsePattern(%q) = nil error, want one", s)
			}
		})
	}
}
