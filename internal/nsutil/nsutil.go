// Package nsutil runs code inside a network namespace. Linux namespaces belong to threads, so fn runs on a
// goroutine locked to an OS thread that has joined the namespace; sockets it opens stay in that namespace and
// processes it starts inherit it. If the thread cannot be moved back, it is not unlocked, so Go discards it
// instead of reusing a thread that sits in the wrong namespace.
package nsutil

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// errExited reports fn leaving its goroutine without returning (runtime.Goexit, as t.Fatal does).
var errExited = fmt.Errorf("nsutil: the function exited its goroutine without returning")

// Do runs fn inside ns and returns its error.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		err := errExited
		defer func() { errc <- err }() // also when fn calls runtime.Goexit
		runtime.LockOSThread()
		orig, gerr := netns.Get()
		if gerr != nil {
			err = gerr
			return
		}
		defer orig.Close()
		if serr := netns.Set(ns); serr != nil {
			err = serr
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// DoNamed runs fn inside the namespace named name (as `ip netns` names them).
func DoNamed(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer ns.Close()
	return Do(ns, fn)
}
