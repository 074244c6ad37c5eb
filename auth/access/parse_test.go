package access

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const examplePolicy = `default: []
groups:
  team-a: [alice, bob]
rules:
  - users: [puller]
    repos: ["**"]
    actions: [pull]
  - groups: [team-a]
    repos: ["team-a/**"]
    actions: [pull, push]
  - users: [admin]
    repos: "**"
    actions: ["*"]
  - users: ["*"]
    repos: [public/*]
    actions: pull
`

func TestPolicyAllows(t *testing.T) {
	p, err := Parse([]byte(examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, repo string
		action           Action
		want             bool
	}{
		{"puller pulls anything", "puller", "team-b/x", Pull, true},
		{"puller cannot push", "puller", "team-b/x", Push, false},
		{"puller cannot delete", "puller", "team-b/x", Delete, false},
		{"group member pushes own team", "alice", "team-a/app", Push, true},
		{"group member pulls own team", "bob", "team-a/app", Pull, true},
		{"group member cannot push other team", "alice", "team-b/x", Push, false},
		{"group member cannot pull other team", "alice", "team-b/x", Pull, false},
		{"group member cannot delete own team", "alice", "team-a/app", Delete, false},
		{"admin deletes", "admin", "team-b/x", Delete, true},
		{"everyone pulls public", "mallory", "public/base", Pull, true},
		{"everyone not nested public", "mallory", "public/a/b", Pull, false},
		{"unknown user nothing else", "mallory", "team-a/app", Pull, false},
		{"unknown action", "admin", "x", Action("manage"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Allows(tt.user, tt.repo, tt.action); got != tt.want {
				t.Errorf("Allows(%q, %q, %q) = %v, want %v", tt.user, tt.repo, tt.action, got, tt.want)
			}
		})
	}
}

func TestPolicyDefault(t *testing.T) {
	p, err := Parse([]byte("default: [pull]\nrules:\n  - users: [ci]\n    repos: [ci/**]\n    actions: [push]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []bool{p.Allows("anyone", "x", Pull), p.Allows("anyone", "x", Push), p.Allows("ci", "ci/app", Push), p.Allows("ci", "x", Push)}
	if diff := cmp.Diff([]bool{true, false, true, false}, got); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if !AllowAll().Allows("anyone", "x/y", Delete) {
		t.Error("AllowAll denies a delete")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, policy string
		want         []string // substrings of the error, each with its line
	}{
		{"empty", "", []string{"the policy is empty"}},
		{"not yaml", "rules: [\n", []string{"yaml:"}},
		{"top level list", "- a\n", []string{"line 1: the policy must be a mapping"}},
		{"unknown top key", "default: []\nrulez: []\n", []string{`line 2: unknown key "rulez"`}},
		{"bad action", "rules:\n  - users: [a]\n    repos: ['**']\n    actions: [pull, write]\n",
			[]string{`line 4: actions: unknown action "write"`}},
		{"bad pattern", "rules:\n  - users: [a]\n    repos: ['team-a**']\n    actions: [pull]\n",
			[]string{"line 3: repository pattern \"team-a**\": ** must be a whole segment"}},
		{"undefined group", "rules:\n  - groups: [ops]\n    repos: ['**']\n    actions: [pull]\n",
			[]string{`line 2: group "ops" is not defined under groups`}},
		{"rule without users", "rules:\n  - repos: ['**']\n    actions: [pull]\n", []string{"line 2: the rule names no users, groups, namespaces or serviceAccounts"}},
		{"rule without repos or actions", "rules:\n  - users: [a]\n", []string{"line 2: the rule has no repos", "line 2: the rule has no actions"}},
		{"unknown rule key", "rules:\n  - users: [a]\n    repo: ['**']\n    actions: [pull]\n",
			[]string{`line 3: unknown key "repo" in a rule`, "line 2: the rule has no repos"}},
		{"bad user name", "rules:\n  - users: ['a:b']\n    repos: ['**']\n    actions: [pull]\n", []string{`line 2: user "a:b"`}},
		{"duplicate group", "groups:\n  a: [x]\n  a: [y]\n", []string{`line 3: group "a" is defined twice`}},
		{"bad default", "default: [fly]\n", []string{`line 1: default: unknown action "fly"`}},
		{"rules not a list", "rules: {a: b}\n", []string{"line 1: rules must be a list"}},
		{"entry not a string", "rules:\n  - users: [[a]]\n    repos: ['**']\n    actions: [pull]\n", []string{"line 2: users: every entry must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.policy))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRights(t *testing.T) {
	p, err := Parse([]byte(examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Rights("alice") {
		got = append(got, r.String())
	}
	want := []string{"pull,push on team-a/** (group team-a)", "pull on public/* (everyone)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rights(alice) (-want +got):\n%s", diff)
	}
}
