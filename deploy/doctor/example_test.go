package doctor_test

import (
	"fmt"

	"github.com/registry-kit/registry-kit/deploy/doctor"
)

func ExampleClassifyEvent() {
	fmt.Println(doctor.ClassifyEvent(`Failed to pull image "127.0.0.1:5000/app:v1": failed to pull and unpack image ` +
		`"127.0.0.1:5000/app:v1": failed to resolve reference "127.0.0.1:5000/app:v1": pulling from host ` +
		`127.0.0.1:5000 failed with status code [manifests v1]: 401 Unauthorized`))
	fmt.Println(doctor.ClassifyEvent(`Failed to pull image "reg.lan:5000/app:v1": ... Head "https://reg.lan:5000/v2/app/manifests/v1": ` +
		`http: server gave HTTP response to HTTPS client`))
	// Output:
	// unauthorized
	// http-served
}
