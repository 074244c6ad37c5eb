// Package htpasswd owns the htpasswd file model: parsing Apache-compatible bcrypt files (`$2y$`, `$2a$`, `$2b$`),
// adding, updating and deleting users, verifying passwords, and writing the file back atomically with mode 0600.
// Other hash schemes (MD5 `$apr1$`, SHA-1 `{SHA}`, crypt) are refused with an error naming the line; ParseLenient
// keeps the good lines of such a file and reports each bad one, for a server that must apply a changed file.
package htpasswd
