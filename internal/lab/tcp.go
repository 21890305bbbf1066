package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"time"
)

// Echo is a TCP echo server listening inside a pod.
type Echo struct {
	ln   net.Listener
	Addr string
}

// ServeEcho listens on all of the pod's addresses on port and echoes every line back.
func (p *Pod) ServeEcho(port int) (*Echo, error) {
	var ln net.Listener
	err := InNS(p.Name, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return &Echo{ln: ln}, nil
}

// Close stops the server.
func (e *Echo) Close() { e.ln.Close() }

// TCP connects from the pod to ip:port, sends a line and expects it back.
func (p *Pod) TCP(ip string, port int) error {
	var c net.Conn
	err := InNS(p.Name, func() (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), 3*time.Second)
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	msg := "weft " + p.Name + "\n"
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo returned %q, want %q", got, msg)
	}
	return nil
}
