package basic_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/registry-kit/registry-kit/auth/basic"
	"github.com/registry-kit/registry-kit/auth/htpasswd"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "htpasswd")
	if _, err := htpasswd.AddUser(path, "alice", "example-password", 4); err != nil {
		fmt.Println(err)
		return
	}
	c, err := basic.New(basic.Options{Realm: "Registry", Path: path})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	req := httptest.NewRequest("GET", "/v2/", nil)
	req.SetBasicAuth("alice", "example-password")
	grant, err := c.Authorized(req)
	fmt.Println(grant.User.Name, err)

	req.SetBasicAuth("alice", "wrong")
	_, err = c.Authorized(req)
	fmt.Println(err)
	// Output:
	// alice <nil>
	// basic authentication challenge for realm "Registry": authentication failure
}
