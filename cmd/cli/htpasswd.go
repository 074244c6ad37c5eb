package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

// errNoMatch is verify's answer for a wrong password and for an unknown user alike.
var errNoMatch = errors.New("user or password does not match")

type htpasswdOptions struct {
	streams       IOStreams
	file          string
	user          string
	passwordStdin bool
	password      string // rejected: only present to give a helpful error
	cost          int
	policyFlags
}

func newHtpasswdCommand(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "htpasswd",
		Short: "Manage users in a bcrypt htpasswd file (compatible with Apache's htpasswd -B)",
		Long: `Add, update, delete, list and verify users of the htpasswd file registry-kit serve authenticates against.
Passwords are read from standard input (--password-stdin) or prompted for on a terminal, never taken from the
command line. The file is written atomically with mode 0600; a running registry-kit serve picks changes up
within seconds.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newHtpasswdAddCommand(streams), newHtpasswdDeleteCommand(streams),
		newHtpasswdListCommand(streams), newHtpasswdVerifyCommand(streams))
	return cmd
}

func (o *htpasswdOptions) fileFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.file, "file", "", "htpasswd file (required)")
}

func (o *htpasswdOptions) userFlags(cmd *cobra.Command, withPassword bool) {
	cmd.Flags().StringVar(&o.user, "user", "", "user name (required)")
	if withPassword {
		cmd.Flags().BoolVar(&o.passwordStdin, "password-stdin", false,
			"read the password from the first line of standard input (default: prompt on a terminal)")
		cmd.Flags().StringVar(&o.password, "password", "", "not supported: passwords on the command line leak")
		_ = cmd.Flags().MarkHidden("password")
	}
}

func (o *htpasswdOptions) validate(needUser bool) error {
	var errs []error
	if o.file == "" {
		errs = append(errs, errors.New("--file: is required"))
	}
	if needUser {
		if o.user == "" {
			errs = append(errs, errors.New("--user: is required"))
		} else if err := htpasswd.ValidateUser(o.user); err != nil {
			errs = append(errs, fmt.Errorf("--user: %w", err))
		}
	}
	if o.password != "" {
		errs = append(errs, errors.New("--password: passwords are not accepted on the command line; use --password-stdin or the prompt"))
	}
	if o.cost != 0 && (o.cost < 4 || o.cost > 31) {
		errs = append(errs, fmt.Errorf("--cost: %d is out of bcrypt's range 4-31", o.cost))
	}
	return errors.Join(errs...)
}

func newHtpasswdAddCommand(streams IOStreams) *cobra.Command {
	o := &htpasswdOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "add --file FILE --user NAME [--password-stdin] [--cost N] [--role pull|push|admin --repos PATTERNS]",
		Short: "Add a user or change a user's password; creates the file if missing; optionally grant a role",
		Long: `Add a user or change a user's password; creates the file if missing.

With --role, the user also gets that role on --repos in the access policy (access-policy.yaml next to the htpasswd
file unless --access-policy says otherwise): pull, push (pull and push) or admin (pull, push and delete). The rule
for the same user and patterns is replaced; other rules and comments are kept. Once a policy file exists, a user
may do only what it grants.`,
		Example: `  printf '%s\n' "$PASSWORD" | registry-kit htpasswd add --file /etc/registry-kit/htpasswd --user alice --password-stdin
  registry-kit htpasswd add --file htpasswd --user bob     # prompts twice
  registry-kit htpasswd add --file htpasswd --user ci --role push --repos 'team-a/**' --password-stdin < ci-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(o.validate(true), o.policyFlags.validate(cmd)); err != nil {
				return err
			}
			pw, err := o.readPassword(true)
			if err != nil {
				return err
			}
			added, err := htpasswd.AddUser(o.file, o.user, pw, o.cost)
			if err != nil {
				return fmt.Errorf("adding user %q to %s: %w", o.user, o.file, err)
			}
			verb := "updated password of"
			if added {
				verb = "added"
			}
			if _, err = fmt.Fprintf(o.streams.Out, "%s user %q in %s\n", verb, o.user, o.file); err != nil || o.role == "" {
				return err
			}
			return o.grant(o)
		},
	}
	o.fileFlag(cmd)
	o.userFlags(cmd, true)
	o.policyFlag(cmd)
	o.roleFlags(cmd)
	cmd.Flags().IntVar(&o.cost, "cost", htpasswd.DefaultCost, "bcrypt cost (4-31); each step doubles the work per login")
	return cmd
}

func newHtpasswdDeleteCommand(streams IOStreams) *cobra.Command {
	o := &htpasswdOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "delete --file FILE --user NAME",
		Short: "Delete a user",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.validate(true); err != nil {
				return err
			}
			if err := htpasswd.DeleteUser(o.file, o.user); err != nil {
				return err
			}
			_, err := fmt.Fprintf(o.streams.Out, "deleted user %q from %s\n", o.user, o.file)
			return err
		},
	}
	o.fileFlag(cmd)
	o.userFlags(cmd, false)
	return cmd
}

func newHtpasswdListCommand(streams IOStreams) *cobra.Command {
	o := &htpasswdOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "list --file FILE [--access-policy FILE]",
		Short: "List the users in file order, with their rights when there is an access policy",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.validate(false); err != nil {
				return err
			}
			f, err := htpasswd.Load(o.file)
			if err != nil {
				return err
			}
			return o.listRights(o, f)
		},
	}
	o.fileFlag(cmd)
	o.policyFlag(cmd)
	return cmd
}

func newHtpasswdVerifyCommand(streams IOStreams) *cobra.Command {
	o := &htpasswdOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "verify --file FILE --user NAME [--password-stdin]",
		Short: "Check a user's password; exits non-zero if it does not match",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.validate(true); err != nil {
				return err
			}
			pw, err := o.readPassword(false)
			if err != nil {
				return err
			}
			ok, err := htpasswd.VerifyUser(o.file, o.user, pw)
			if err != nil {
				return err
			}
			if !ok {
				return errNoMatch
			}
			_, err = fmt.Fprintf(o.streams.Out, "password for user %q is correct\n", o.user)
			return err
		},
	}
	o.fileFlag(cmd)
	o.userFlags(cmd, true)
	return cmd
}

// maxHtpasswdPasswordInput bounds what --password-stdin reads.
const maxHtpasswdPasswordInput = 4096

// readPassword reads the password from standard input (--password-stdin) or prompts on a terminal, twice when
// confirm is set.
func (o *htpasswdOptions) readPassword(confirm bool) (string, error) {
	if o.passwordStdin {
		line, err := bufio.NewReader(io.LimitReader(o.streams.In, maxHtpasswdPasswordInput)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("--password-stdin: reading the password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: no password on standard input")
		}
		return pw, nil
	}
	in, ok := o.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", errors.New("no password: standard input is not a terminal; pass --password-stdin and pipe the password in")
	}
	pw, err := o.prompt(in, "Password: ")
	if err != nil {
		return "", err
	}
	if confirm {
		again, err := o.prompt(in, "Repeat password: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func (o *htpasswdOptions) prompt(in *os.File, label string) (string, error) {
	if _, err := fmt.Fprint(o.streams.ErrOut, label); err != nil {
		return "", err
	}
	b, err := term.ReadPassword(int(in.Fd()))
	_, _ = fmt.Fprintln(o.streams.ErrOut)
	if err != nil {
		return "", fmt.Errorf("reading the password from the terminal: %w", err)
	}
	return string(b), nil
}
