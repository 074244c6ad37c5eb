package access

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSetRole(t *testing.T) {
	data, err := SetRole(nil, "puller", "pull", []string{"**"})
	if err != nil {
		t.Fatal(err)
	}
	data, err = SetRole(data, "ci", "push", []string{"team-a/**"})
	if err != nil {
		t.Fatal(err)
	}
	// Setting the same user and repos again replaces the rule.
	if data, err = SetRole(data, "ci", "admin", []string{"team-a/**"}); err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("edited policy does not parse: %v\n%s", err, data)
	}
	got := map[string][]string{}
	for _, u := range []string{"puller", "ci"} {
		for _, r := range p.Rights(u) {
			got[u] = append(got[u], r.String())
		}
	}
	want := map[string][]string{"puller": {"pull on **"}, "ci": {"pull,push,delete on team-a/**"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rights (-want +got):\n%s\npolicy:\n%s", diff, data)
	}
	if !strings.Contains(string(data), "# registry-kit access policy") {
		t.Errorf("the template comment was lost:\n%s", data)
	}

	// Hand-written rules and comments survive; role none removes the user's own rule.
	hand := "# my policy\ngroups:\n  ops: [olga]\nrules:\n  # ops run everything\n  - groups: [ops]\n    repos: ['**']\n    actions: ['*']\n"
	data, err = SetRole([]byte(hand), "ci", "pull", []string{"**"})
	if err != nil {
		t.Fatal(err)
	}
	if data, err = SetRole(data, "ci", "none", []string{"**"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# my policy", "# ops run everything", "groups: [ops]"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("edited policy lost %q:\n%s", s, data)
		}
	}
	if strings.Contains(string(data), "ci") {
		t.Errorf("role none left ci in the policy:\n%s", data)
	}
}

func TestSetRoleErrors(t *testing.T) {
	tests := []struct{ name, data, role, repo, want string }{
		{"unknown role", "", "owner", "**", `unknown role "owner"`},
		{"bad pattern", "", "pull", "a**", "must be a whole segment"},
		{"bad existing policy", "rules: [{users: [a]}]\n", "pull", "**", "line 1: the rule has no repos"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SetRole([]byte(tt.data), "ci", tt.role, []string{tt.repo})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetRole error = %v, want %q", err, tt.want)
			}
		})
	}
}
