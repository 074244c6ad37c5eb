// Package manifestcache keeps recent manifest GET and HEAD responses of the registry in memory and answers repeated
// requests from there, after the request's authorization has been checked as usual. Entries are dropped exactly when
// a write through this process could change them (a manifest or tag PUT or DELETE, a blob DELETE, in the same
// repository), the cache is an LRU bounded by bytes, and with several replicas the writes of the others reach it
// through Redis pub/sub (Peers), with a time to live as the bound when a message cannot be delivered.
package manifestcache
