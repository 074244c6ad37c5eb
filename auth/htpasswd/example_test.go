package htpasswd_test

import (
	"fmt"
	"strings"

	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

func ExampleParse() {
	f, err := htpasswd.Parse(strings.NewReader("# made by htpasswd -B\n" +
		"alice:$2y$04$tP0KJS5QQLzlVwRuFcESUeJtlxCBnb4F6MtWCBUOes4pLtJ2Z7S3m\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Users(), f.Verify("alice", "s3cret-test"), f.Verify("alice", "wrong"))

	_, err = htpasswd.Parse(strings.NewReader("carol:$apr1$ic369s9t$BJqWWEGh6uHsCLsQ3T0Cq/\n"))
	fmt.Println(err)
	// Output:
	// [alice] true false
	// line 1: user "carol": password hash uses Apache MD5 ($apr1$); only bcrypt is supported (create entries with htpasswd -B)
}
