package etcd

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// tokenAuth is etcd's user/password authentication done lazily. clientv3 authenticates synchronously inside
// clientv3.New when Config.Username is set, so with an unreachable etcd construction fails and weftd exited
// instead of retrying. Instead the client is built without credentials, and tokenAuth attaches the token to each
// call as per-RPC credentials, fetching it (Authenticate on the same connection) the first time a call needs one
// and again after the server refuses it (expired, revoked, or auth enabled later). A call made while etcd is
// unreachable fails like any other call, and the daemon's retried step reports it.
type tokenAuth struct {
	user, password string
	cli            *clientv3.Client // set once the client exists, before any call

	// fetching is held by the one call that authenticates; others wait for it or for their own context, so a
	// watch blocked on an unreachable etcd never holds up a call with a deadline.
	fetching chan struct{}

	mu       sync.Mutex
	token    string
	disabled bool // the server said auth is not enabled
}

// authTimeout bounds one Authenticate call, whatever the context of the call that needs the token (a variable
// for tests).
var authTimeout = 10 * time.Second

func newTokenAuth(user, password string) *tokenAuth {
	return &tokenAuth{user: user, password: password, fetching: make(chan struct{}, 1)}
}

// current is the token to send and whether one is needed still.
func (a *tokenAuth) current() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token, a.token == "" && !a.disabled
}

// authenticating marks the context of tokenAuth's own Authenticate call, which must not carry (or fetch) a token.
type authenticating struct{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (a *tokenAuth) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if ctx.Value(authenticating{}) != nil {
		return nil, nil
	}
	tok, need := a.current()
	if need {
		select {
		case a.fetching <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-a.fetching }()
		if tok, need = a.current(); need { // another call may have fetched it meanwhile
			actx, cancel := context.WithTimeout(context.WithValue(ctx, authenticating{}, true), authTimeout)
			resp, err := a.cli.Auth.Authenticate(actx, a.user, a.password)
			cancel()
			a.mu.Lock()
			switch {
			case errors.Is(err, rpctypes.ErrAuthNotEnabled):
				a.disabled = true
			case err == nil:
				a.token = resp.Token
			}
			tok = a.token
			a.mu.Unlock()
			if err != nil && !errors.Is(err, rpctypes.ErrAuthNotEnabled) {
				return nil, err
			}
		}
	}
	if tok == "" {
		return nil, nil
	}
	return map[string]string{rpctypes.TokenFieldNameGRPC: tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: etcd takes tokens over plain HTTP too, as
// clientv3 itself sends them.
func (a *tokenAuth) RequireTransportSecurity() bool { return false }

// refused forgets the token when the server turned it down, so the next call authenticates again.
func (a *tokenAuth) refused(err error) {
	if err == nil {
		return
	}
	e := rpctypes.Error(err)
	if errors.Is(e, rpctypes.ErrInvalidAuthToken) || errors.Is(e, rpctypes.ErrAuthOldRevision) || errors.Is(e, rpctypes.ErrUserEmpty) {
		a.mu.Lock()
		a.token, a.disabled = "", false
		a.mu.Unlock()
	}
}

func (a *tokenAuth) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if ctx.Value(authenticating{}) == nil {
		a.refused(err)
	}
	return err
}

func (a *tokenAuth) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		a.refused(err)
		return nil, err
	}
	return &watchedStream{ClientStream: s, a: a}, nil
}

// watchedStream sees a stream's errors (a watch refused for its token).
type watchedStream struct {
	grpc.ClientStream
	a *tokenAuth
}

func (s *watchedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	s.a.refused(err)
	return err
}

// dialOptions wire tokenAuth into a client.
func (a *tokenAuth) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithPerRPCCredentials(a), grpc.WithChainUnaryInterceptor(a.unary), grpc.WithChainStreamInterceptor(a.stream)}
}
