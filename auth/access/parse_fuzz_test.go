package access

import "testing"

// FuzzParse: any input either parses or gives an error (never a panic); a parsed policy answers questions, and
// SetRole on it gives a policy that parses again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(examplePolicy))
	f.Add([]byte(Template))
	f.Add([]byte("default: [pull]\n"))
	f.Add([]byte("rules:\n  - users: [a]\n    repos: ['a/**/b', 'c/*']\n    actions: ['*']\n"))
	f.Add([]byte("groups: {g: [x]}\nrules: [{groups: [g], repos: '**', actions: pull}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		_ = p.Allows("a", "a/b", Pull)
		_ = p.Rights("x")
		out, err := SetRole(data, "fuzz-user", "push", []string{"team-a/**"})
		if err != nil {
			return // input YAML the editor cannot rewrite (e.g. aliases) is refused, not mangled
		}
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("SetRole produced a policy that does not parse: %v\n%s", err, out)
		}
		if !q.Allows("fuzz-user", "team-a/x", Push) {
			t.Fatalf("SetRole did not grant the role:\n%s", out)
		}
	})
}
