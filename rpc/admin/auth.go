package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// healthPrefix is exempt from authentication so that load balancers and
// probes can check the node without a credential; it reveals only whether
// a service is serving.
const healthPrefix = "/grpc.health.v1.Health/"

// authenticator checks every call's credentials: the bearer token in the
// "authorization" metadata and, under mutual TLS, a verified client
// certificate.
type authenticator struct {
	tokenSum   [sha256.Size]byte // digest of the expected token
	needToken  bool
	needClient bool // mutual TLS: a verified peer certificate
}

func newAuthenticator(token string, mutualTLS bool) *authenticator {
	return &authenticator{
		tokenSum:   sha256.Sum256([]byte(token)),
		needToken:  token != "",
		needClient: mutualTLS,
	}
}

// check returns nil when ctx carries acceptable credentials.
func (a *authenticator) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	if a.needClient {
		p, ok := peer.FromContext(ctx)
		if !ok {
			return status.Error(codes.Unauthenticated, "no peer information")
		}
		ti, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(ti.State.VerifiedChains) == 0 {
			return status.Error(codes.Unauthenticated, "a verified client certificate is required (mutual TLS)")
		}
	}
	if !a.needToken {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Error(codes.Unauthenticated, "missing bearer token: set GOUWSGI_TOKEN or --token-file")
	}
	got, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return status.Error(codes.Unauthenticated, `authorization metadata must be "Bearer <token>"`)
	}
	// Comparing fixed-size digests keeps the comparison constant-time and
	// independent of the token's length.
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return nil
}

// unary authenticates, then logs the call.
func (a *authenticator) unary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		err := a.check(ctx, info.FullMethod)
		var resp any
		if err == nil {
			resp, err = handler(ctx, req)
		}
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

// stream authenticates, then logs the call when the stream ends.
func (a *authenticator) stream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := a.check(ss.Context(), info.FullMethod)
		if err == nil {
			err = handler(srv, ss)
		}
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	if code == codes.Unauthenticated || code == codes.Internal {
		level = slog.LevelWarn
	}
	attrs := []any{"method", method, "code", code.String(), "duration", time.Since(start)}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	if err != nil {
		attrs = append(attrs, "error", status.Convert(err).Message())
	}
	log.Log(ctx, level, "admin call", attrs...)
}
