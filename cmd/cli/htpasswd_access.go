package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/registry-kit/registry-kit/auth/access"
	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// policyFlags are the access-policy flags htpasswd add and list share.
type policyFlags struct {
	policy string
	role   string
	repos  []string
}

func (p *policyFlags) policyFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.policy, "access-policy", "",
		"access policy file (default: "+access.DefaultFileName+" next to --file, where serve looks for it)")
}

func (p *policyFlags) roleFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.role, "role", "",
		"also grant a role in the access policy: pull, push (pull and push) or admin (pull, push, delete); none removes it")
	cmd.Flags().StringSliceVar(&p.repos, "repos", []string{"**"},
		`repository patterns the role applies to: "**" (all), "team-a/*" (one level), "team-a/**" (team-a and below)`)
}

func (p *policyFlags) path(htpasswdFile string) string {
	if p.policy != "" {
		return p.policy
	}
	return access.DefaultPath(htpasswdFile)
}

func (p *policyFlags) validate(cmd *cobra.Command) error {
	var errs []error
	if cmd.Flags().Changed("repos") && p.role == "" {
		errs = append(errs, errors.New("--repos: only with --role"))
	}
	if p.role != "" {
		if _, ok := access.Roles[p.role]; !ok && p.role != "none" {
			errs = append(errs, fmt.Errorf("--role: unknown role %q (want %s or none)", p.role, strings.Join(access.RoleNames, ", ")))
		}
		for _, r := range p.repos {
			if _, err := access.ParsePattern(r); err != nil {
				errs = append(errs, fmt.Errorf("--repos: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// grant writes the role to the policy file and says so.
func (p *policyFlags) grant(o *htpasswdOptions) error {
	path := p.path(o.file)
	_, statErr := os.Stat(path)
	var kept []string
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new policy allows only what it names: the users who could do everything so far keep that.
		f, err := htpasswd.Load(o.file)
		if err != nil {
			return err
		}
		for _, u := range f.Users() {
			if u == o.user {
				continue
			}
			if err := access.EditFile(path, u, "admin", []string{"**"}); err != nil {
				return err
			}
			kept = append(kept, u)
		}
	}
	if err := access.EditFile(path, o.user, p.role, p.repos); err != nil {
		return err
	}
	if p.role == "none" {
		_, err := fmt.Fprintf(o.streams.Out, "removed user %q's own rule for %s from %s\n", o.user, strings.Join(p.repos, ","), path)
		return err
	}
	acts := make([]string, 0, 3)
	for _, a := range access.Roles[p.role] {
		acts = append(acts, string(a))
	}
	if _, err := fmt.Fprintf(o.streams.Out, "granted user %q %s (%s) on %s in %s\n", o.user, p.role,
		strings.Join(acts, ","), strings.Join(p.repos, ","), path); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if len(kept) > 0 {
			fmt.Fprintf(o.streams.ErrOut, "created %s: the existing users %s keep every right (role admin on **); "+
				"from now on only what the policy grants is allowed\n", path, strings.Join(kept, ", "))
		} else {
			fmt.Fprintf(o.streams.ErrOut, "created %s: from now on only what it grants is allowed\n", path)
		}
		_, err := fmt.Fprintln(o.streams.ErrOut, "a running registry-kit serve needs a restart to pick up a policy file "+
			"that did not exist (later edits load live)")
		return err
	}
	return nil
}

// listRights prints each user of f with their rights under the policy file, or just the names without one.
func (p *policyFlags) listRights(o *htpasswdOptions, f *htpasswd.File) error {
	path := p.path(o.file)
	pol, err := access.ReadFile(path)
	if err != nil {
		if p.policy == "" && errors.Is(err, fs.ErrNotExist) {
			for _, u := range f.Users() {
				if _, err := fmt.Fprintln(o.streams.Out, u); err != nil {
					return err
				}
			}
			_, err := fmt.Fprintf(o.streams.ErrOut, "no access policy (%s): every user may pull, push and delete every repository\n", path)
			return err
		}
		return err
	}
	tw := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tRIGHTS")
	for _, u := range f.Users() {
		var rights []string
		for _, r := range pol.Rights(u) {
			rights = append(rights, r.String())
		}
		if len(rights) == 0 {
			rights = []string{"none"}
		}
		fmt.Fprintf(tw, "%s\t%s\n", u, strings.Join(rights, "; "))
	}
	return tw.Flush()
}
