package access

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is the policy a new file starts from: nothing is allowed until a rule says so.
const Template = `# registry-kit access policy. A user's rights on a repository are "default" plus the actions of every rule that
# names the user (in users, through one of groups, or users: ["*"] for everyone) with a matching repos pattern:
# "**" every repository, "team-a/*" one level under team-a, "team-a/**" team-a and everything under it.
# Actions: pull, push, delete. Everything else is denied (403). The registry reloads this file within seconds.
default: []
groups: {}
rules: []
`

// SetRole edits a policy document so user has exactly role's actions on repos, through a rule of its own
// (users: [user], repos: exactly these patterns), which replaces any such rule already there; role "none" removes
// it. Other rules, comments and formatting are kept. An empty data starts from Template. The result is checked by
// Parse.
func SetRole(data []byte, user, role string, repos []string) ([]byte, error) {
	if role != "none" && !validRole(role) {
		return nil, fmt.Errorf("unknown role %q (want %s or none)", role, strings.Join(RoleNames, ", "))
	}
	if len(repos) == 0 {
		return nil, fmt.Errorf("no repository patterns given")
	}
	for _, r := range repos {
		if _, err := ParsePattern(r); err != nil {
			return nil, err
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte(Template)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing access policy: %w", err)
	}
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	rules := mapValue(root, "rules")
	if rules == nil {
		root.Content = append(root.Content, scalar("rules"), &yaml.Node{Kind: yaml.SequenceNode})
		rules = root.Content[len(root.Content)-1]
	}
	if rules.Kind != yaml.SequenceNode || rules.Tag == "!!null" {
		*rules = yaml.Node{Kind: yaml.SequenceNode}
	}
	rules.Style = 0
	kept := rules.Content[:0]
	for _, r := range rules.Content {
		if !ownRule(r, user, repos) {
			kept = append(kept, r)
		}
	}
	rules.Content = kept
	if role != "none" {
		acts := make([]string, 0, 3)
		for _, a := range Roles[role] {
			acts = append(acts, string(a))
		}
		rules.Content = append(rules.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			scalar("users"), flowList([]string{user}),
			scalar("repos"), flowList(repos),
			scalar("actions"), flowList(acts),
		}, HeadComment: "role " + role + " for " + user + " (registry-kit htpasswd add --role)"})
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("writing access policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing access policy: %w", err)
	}
	if _, err := Parse(out.Bytes()); err != nil {
		return nil, fmt.Errorf("edited access policy does not parse (a bug): %w", err)
	}
	return out.Bytes(), nil
}

// ownRule reports whether r is the rule SetRole maintains for user and repos.
func ownRule(r *yaml.Node, user string, repos []string) bool {
	if r.Kind != yaml.MappingNode || mapValue(r, "groups") != nil {
		return false
	}
	return slices.Equal(nodeStrings(mapValue(r, "users")), []string{user}) &&
		slices.Equal(nodeStrings(mapValue(r, "repos")), repos)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func nodeStrings(n *yaml.Node) []string {
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func flowList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, it := range items {
		n.Content = append(n.Content, scalar(it))
	}
	return n
}
