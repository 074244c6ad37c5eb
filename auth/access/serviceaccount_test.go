package access

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServiceAccountRules(t *testing.T) {
	p, err := Parse([]byte(`
default: []
rules:
  - namespaces: [team-a]
    repos: ["team-a/**"]
    actions: [pull]
  - serviceAccounts: [ci/builder, ops/*]
    repos: ["**"]
    actions: [pull, push]
  - namespaces: ["*"]
    repos: ["public/**"]
    actions: [pull]
  - users: [alice]
    repos: ["team-a/**"]
    actions: [push]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, repo string
		action     Action
		want       bool
	}{
		{"system:serviceaccount:team-a:default", "team-a/app", Pull, true},
		{"system:serviceaccount:team-a:other", "team-a/x/y", Pull, true},
		{"system:serviceaccount:team-a:default", "team-a/app", Push, false},
		{"system:serviceaccount:team-b:default", "team-a/app", Pull, false},
		{"system:serviceaccount:team-b:default", "public/base", Pull, true},
		{"system:serviceaccount:ci:builder", "team-b/app", Push, true},
		{"system:serviceaccount:ci:other", "team-b/app", Pull, false},
		{"system:serviceaccount:ops:anyone", "x", Push, true},
		{"system:serviceaccount:team-a", "team-a/app", Pull, false}, // not a ServiceAccount user name
		{"team-a", "team-a/app", Pull, false},                       // an htpasswd user named like a namespace
		{"alice", "team-a/app", Push, true},
		{"alice", "public/base", Pull, false},
	}
	for _, tt := range tests {
		if got := p.Allows(tt.user, tt.repo, tt.action); got != tt.want {
			t.Errorf("Allows(%q, %q, %s) = %v, want %v", tt.user, tt.repo, tt.action, got, tt.want)
		}
	}
	got := p.Rights("system:serviceaccount:team-a:default")
	want := []Right{
		{Repos: "team-a/**", Actions: []Action{Pull}, Via: "namespace team-a"},
		{Repos: "public/**", Actions: []Action{Pull}, Via: "namespace *"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Rights (-want +got):\n%s", diff)
	}
}

func TestServiceAccountRuleErrors(t *testing.T) {
	tests := []struct{ name, policy, want string }{
		{"service account as a user", "rules:\n  - users: [\"system:serviceaccount:team-a:default\"]\n    repos: [x]\n    actions: [pull]\n",
			`line 2: user "system:serviceaccount:team-a:default" is a ServiceAccount: name it with serviceAccounts: [team-a/default] or namespaces: [team-a]`},
		{"bad namespace", "rules:\n  - namespaces: [Team_A]\n    repos: [x]\n    actions: [pull]\n", `namespace "Team_A"`},
		{"service account without namespace", "rules:\n  - serviceAccounts: [builder]\n    repos: [x]\n    actions: [pull]\n", `want NAMESPACE/NAME`},
		{"bad service account name", "rules:\n  - serviceAccounts: [ci/Bad_Name]\n    repos: [x]\n    actions: [pull]\n", `service account "ci/Bad_Name": name`},
		{"names nobody", "rules:\n  - repos: [x]\n    actions: [pull]\n", "names no users, groups, namespaces or serviceAccounts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.policy))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseServiceAccount(t *testing.T) {
	for _, tt := range []struct {
		user, ns, name string
		ok             bool
	}{
		{"system:serviceaccount:team-a:default", "team-a", "default", true},
		{"system:serviceaccount:team-a", "", "", false},
		{"system:serviceaccount::x", "", "", false},
		{"system:serviceaccount:a:b:c", "", "", false},
		{"alice", "", "", false},
	} {
		ns, name, ok := ParseServiceAccount(tt.user)
		if ns != tt.ns || name != tt.name || ok != tt.ok {
			t.Errorf("ParseServiceAccount(%q) = %q, %q, %v", tt.user, ns, name, ok)
		}
	}
	if u := ServiceAccountUser("team-a", "default"); u != "system:serviceaccount:team-a:default" {
		t.Errorf("ServiceAccountUser = %q", u)
	}
}
