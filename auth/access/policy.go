package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3/registry/auth"
)

// Action is what a user may do to a repository, named as in distribution's access records.
type Action string

// The actions a policy grants.
const (
	Pull   Action = "pull"
	Push   Action = "push"
	Delete Action = "delete"
)

// Actions lists every action in the order they are shown.
var Actions = []Action{Pull, Push, Delete}

// actionSet is a set of actions as bits.
type actionSet uint8

func (a Action) bit() actionSet {
	switch a {
	case Pull:
		return 1
	case Push:
		return 2
	case Delete:
		return 4
	}
	return 0
}

func (s actionSet) has(a Action) bool { return a.bit() != 0 && s&a.bit() != 0 }

// list is the set's actions in the order of Actions.
func (s actionSet) list() []Action {
	var out []Action
	for _, a := range Actions {
		if s.has(a) {
			out = append(out, a)
		}
	}
	return out
}

// Roles are the named sets of actions the CLI grants: pull, push (pull and push) and admin (everything).
var Roles = map[string][]Action{
	"pull":  {Pull},
	"push":  {Pull, Push},
	"admin": {Pull, Push, Delete},
}

// RoleNames are the roles in the order they are documented.
var RoleNames = []string{"pull", "push", "admin"}

// Everyone in a rule's users means every authenticated user.
const Everyone = "*"

// Policy decides which authenticated user may do what to which repository. The rights of a user on a repository
// are the policy's default actions plus the actions of every rule that names the user (directly, through a group,
// or as "*") and has a pattern matching the repository. Nothing else is allowed.
type Policy struct {
	defaults actionSet
	groups   map[string][]string // group -> members
	memberOf map[string][]string // user -> groups
	rules    []Rule
}

// Rule grants actions on repositories matching any of Repos to Users and to the members of Groups.
type Rule struct {
	Line    int // where the rule starts in the policy file; 0 when built in code
	Users   []string
	Groups  []string
	Repos   []Pattern
	actions actionSet
	// serviceAccounts are the rule's namespaces and serviceAccounts entries.
	serviceAccounts []saRef
}

// Actions are the actions the rule grants.
func (r Rule) Actions() []Action { return r.actions.list() }

// AllowAll is the policy in effect without a policy file: every authenticated user may do everything.
func AllowAll() *Policy {
	return &Policy{defaults: Pull.bit() | Push.bit() | Delete.bit()}
}

// Allows reports whether user may perform action on the repository.
func (p *Policy) Allows(user, repo string, action Action) bool {
	if p.defaults.has(action) {
		return true
	}
	for i := range p.rules {
		r := &p.rules[i]
		if r.actions.has(action) && p.names(r, user) && r.matches(repo) {
			return true
		}
	}
	return false
}

// Permits reports whether user may have the access distribution asks for. The catalog is open to every
// authenticated user: its answer is filtered to the repositories they may pull.
func (p *Policy) Permits(user string, a auth.Access) bool {
	switch a.Type {
	case "repository":
		return p.Allows(user, a.Name, Action(a.Action))
	case "registry":
		return a.Name == "catalog"
	}
	return false
}

// names reports whether the rule applies to user.
func (p *Policy) names(r *Rule, user string) bool {
	for _, u := range r.Users {
		if u == user || u == Everyone {
			return true
		}
	}
	for _, g := range r.Groups {
		if slices.Contains(p.groups[g], user) {
			return true
		}
	}
	_, ok := r.namesServiceAccount(user)
	return ok
}

func (r *Rule) matches(repo string) bool {
	for _, pat := range r.Repos {
		if pat.Match(repo) {
			return true
		}
	}
	return false
}

// Right is one grant a user holds: actions on repositories matching a pattern.
type Right struct {
	Repos   string   // the pattern, as written
	Actions []Action // in the order of Actions
	Via     string   // "default", "user", "everyone", "group NAME", "namespace NS" or "service account NS/NAME"
}

func (r Right) String() string {
	acts := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		acts[i] = string(a)
	}
	s := strings.Join(acts, ",") + " on " + r.Repos
	if r.Via != "user" {
		s += " (" + r.Via + ")"
	}
	return s
}

// Rights lists what user may do, one entry per rule pattern that names them, the default first.
func (p *Policy) Rights(user string) []Right {
	var out []Right
	if p.defaults != 0 {
		out = append(out, Right{Repos: "**", Actions: p.defaults.list(), Via: "default"})
	}
	for i := range p.rules {
		r := &p.rules[i]
		via := ""
		switch {
		case slices.Contains(r.Users, user):
			via = "user"
		case slices.Contains(r.Users, Everyone):
			via = "everyone"
		default:
			for _, g := range r.Groups {
				if slices.Contains(p.groups[g], user) {
					via = "group " + g
					break
				}
			}
		}
		if via == "" {
			via, _ = r.namesServiceAccount(user)
		}
		if via == "" {
			continue
		}
		for _, pat := range r.Repos {
			out = append(out, Right{Repos: pat.String(), Actions: r.actions.list(), Via: via})
		}
	}
	return out
}

// Rules are the policy's rules in file order.
func (p *Policy) Rules() []Rule { return slices.Clone(p.rules) }

// String summarises the policy for a log line.
func (p *Policy) String() string {
	return fmt.Sprintf("%d rules, %d groups, default %v", len(p.rules), len(p.groups), p.defaults.list())
}
