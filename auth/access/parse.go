package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// An example policy, as the README and the generated manifests show it:
//
//	default: []                      # actions every authenticated user has on every repository
//	groups:
//	  team-a: [alice, bob]
//	rules:
//	  - users: [puller]
//	    repos: ["**"]
//	    actions: [pull]
//	  - groups: [team-a]
//	    repos: ["team-a/**"]
//	    actions: [pull, push]
//	  - namespaces: [team-a]            # pods of namespace team-a, by their ServiceAccount token
//	    serviceAccounts: [ci/builder]   # and ServiceAccount builder of namespace ci
//	    repos: ["team-a/**"]
//	    actions: [pull]

// Parse reads a policy. Every problem is reported, each with the line it is on.
func Parse(data []byte) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing access policy: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, errors.New("parsing access policy: the policy is empty; give rules, or default: [] to allow nothing")
	}
	p := &parser{}
	pol := p.policy(doc.Content[0])
	if err := errors.Join(p.errs...); err != nil {
		return nil, fmt.Errorf("parsing access policy:\n%w", err)
	}
	return pol, nil
}

type parser struct{ errs []error }

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

// pairs walks a mapping's keys and values, reporting a node that is not a mapping.
func (p *parser) pairs(n *yaml.Node, what string, each func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s must be a mapping", what)
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		each(n.Content[i].Value, n.Content[i], n.Content[i+1])
	}
}

// strings reads a list of strings; a single string is a list of one.
func (p *parser) strings(n *yaml.Node, what string) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				p.fail(c, "%s: every entry must be a string", what)
				continue
			}
			out = append(out, c.Value)
		}
		return out
	}
	p.fail(n, "%s must be a list of strings", what)
	return nil
}

func (p *parser) policy(root *yaml.Node) *Policy {
	pol := &Policy{groups: map[string][]string{}, memberOf: map[string][]string{}}
	var rules *yaml.Node
	p.pairs(root, "the policy", func(key string, k, v *yaml.Node) {
		switch key {
		case "default":
			pol.defaults = p.actions(v, "default")
		case "groups":
			p.groups(pol, v)
		case "rules":
			rules = v
		default:
			p.fail(k, "unknown key %q (want default, groups or rules)", key)
		}
	})
	if rules == nil {
		return pol
	}
	if rules.Kind != yaml.SequenceNode {
		p.fail(rules, "rules must be a list")
		return pol
	}
	for _, r := range rules.Content {
		pol.rules = append(pol.rules, p.rule(pol, r))
	}
	return pol
}

func (p *parser) groups(pol *Policy, n *yaml.Node) {
	p.pairs(n, "groups", func(name string, k, v *yaml.Node) {
		if err := htpasswd.ValidateUser(name); err != nil || name == Everyone {
			p.fail(k, "group name %q is not valid", name)
			return
		}
		if _, dup := pol.groups[name]; dup {
			p.fail(k, "group %q is defined twice", name)
			return
		}
		members := p.strings(v, "members of group "+name)
		for _, m := range members {
			if err := htpasswd.ValidateUser(m); err != nil {
				p.fail(v, "group %q: member %q: %v", name, m, err)
				continue
			}
			pol.memberOf[m] = append(pol.memberOf[m], name)
		}
		pol.groups[name] = members
	})
}

func (p *parser) rule(pol *Policy, n *yaml.Node) Rule {
	r := Rule{Line: n.Line}
	seen := map[string]bool{}
	p.pairs(n, "a rule", func(key string, k, v *yaml.Node) {
		seen[key] = true
		switch key {
		case "users":
			for _, u := range p.strings(v, "users") {
				if ns, name, ok := ParseServiceAccount(u); ok {
					p.fail(v, "user %q is a ServiceAccount: name it with serviceAccounts: [%s/%s] or namespaces: [%s]", u, ns, name, ns)
					continue
				}
				if err := htpasswd.ValidateUser(u); err != nil {
					p.fail(v, "user %q: %v", u, err)
					continue
				}
				r.Users = append(r.Users, u)
			}
		case "groups":
			for _, g := range p.strings(v, "groups") {
				if _, ok := pol.groups[g]; !ok {
					p.fail(v, "group %q is not defined under groups", g)
					continue
				}
				r.Groups = append(r.Groups, g)
			}
		case "namespaces":
			for _, ns := range p.strings(v, "namespaces") {
				if err := parseNamespace(ns); err != nil {
					p.fail(v, "%v", err)
					continue
				}
				r.serviceAccounts = append(r.serviceAccounts, saRef{ns: ns, name: Everyone})
			}
		case "serviceAccounts":
			for _, s := range p.strings(v, "serviceAccounts") {
				ref, err := parseServiceAccountRef(s)
				if err != nil {
					p.fail(v, "%v", err)
					continue
				}
				r.serviceAccounts = append(r.serviceAccounts, ref)
			}
		case "repos":
			for _, s := range p.strings(v, "repos") {
				pat, err := ParsePattern(s)
				if err != nil {
					p.fail(v, "%v", err)
					continue
				}
				r.Repos = append(r.Repos, pat)
			}
		case "actions":
			r.actions = p.actions(v, "actions")
		default:
			p.fail(k, "unknown key %q in a rule (want users, groups, namespaces, serviceAccounts, repos and actions)", key)
		}
	})
	if n.Kind != yaml.MappingNode {
		return r
	}
	if !seen["users"] && !seen["groups"] && !seen["namespaces"] && !seen["serviceAccounts"] {
		p.fail(n, "the rule names no users, groups, namespaces or serviceAccounts")
	}
	if !seen["repos"] {
		p.fail(n, `the rule has no repos (use "**" for every repository)`)
	}
	if !seen["actions"] {
		p.fail(n, "the rule has no actions (pull, push, delete)")
	}
	return r
}

func (p *parser) actions(n *yaml.Node, what string) actionSet {
	var set actionSet
	for _, s := range p.strings(n, what) {
		a := Action(strings.ToLower(s))
		switch {
		case s == "*":
			set |= Pull.bit() | Push.bit() | Delete.bit()
		case a.bit() != 0:
			set |= a.bit()
		default:
			p.fail(n, "%s: unknown action %q (want pull, push, delete or *)", what, s)
		}
	}
	return set
}

// validRole reports whether name is one of RoleNames.
func validRole(name string) bool { return slices.Contains(RoleNames, name) }
