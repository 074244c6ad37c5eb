// Package htpasswd owns the htpasswd file model: parsing Apache-compatible bcrypt files (`$2y$`, `$2a$`, `$2b$`),
// adding, updating and deleting users, verifying passwords, and writing the file back atomically with mode 0600.
// Other hash schemes (MD5 `$apr1$`, SHA-1 `{SHA}`, crypt) are refused with an error naming the line.
package htpasswd
