package etcd

import (
	"context"
	"errors"
	"sync"

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

	mu       sync.Mutex
	token    string
	disabled bool // the server said auth is not enabled
}

// authenticating marks the context of tokenAuth's own Authenticate call, which must not carry (or fetch) a token.
type authenticating struct{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (a *tokenAuth) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if ctx.Value(authenticating{}) != nil {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == "" && !a.disabled {
		resp, err := a.cli.Auth.Authenticate(context.WithValue(ctx, authenticating{}, true), a.user, a.password)
		switch {
		case errors.Is(err, rpctypes.ErrAuthNotEnabled):
			a.disabled = true
		case err != nil:
			return nil, err
		default:
			a.token = resp.Token
		}
	}
	if a.token == "" {
		return nil, nil
	}
	return map[string]string{rpctypes.TokenFieldNameGRPC: a.token}, nil
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
