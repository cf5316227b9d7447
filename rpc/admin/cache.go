package admin

import (
	"context"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type cacheServer struct {
	adminv1.UnimplementedCacheServiceServer
	caches Caches
}

func (s *cacheServer) Get(ctx context.Context, req *adminv1.CacheServiceGetRequest) (*adminv1.CacheServiceGetResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("cache key is required")
	}
	it, err := s.caches.Get(ctx, req.GetCache(), req.GetKey(), req.GetLinearizable())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &adminv1.CacheServiceGetResponse{Value: it.Value}
	if !it.ExpiresAt.IsZero() {
		resp.ExpiresAt = timestamppb.New(it.ExpiresAt)
	}
	return resp, nil
}

func (s *cacheServer) Set(ctx context.Context, req *adminv1.CacheServiceSetRequest) (*adminv1.CacheServiceSetResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("cache key is required")
	}
	var mode SetMode
	switch req.GetMode() {
	case adminv1.SetMode_SET_MODE_SET:
		mode = SetModeSet
	case adminv1.SetMode_SET_MODE_UPDATE:
		mode = SetModeUpdate
	default:
		return nil, invalid("set mode is required: SET_MODE_SET (add only) or SET_MODE_UPDATE (add or replace)")
	}
	ttl := req.GetTtl().AsDuration()
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, invalid("ttl: %v", err)
		}
		if ttl < 0 {
			return nil, invalid("ttl must not be negative, got %s", ttl)
		}
	}
	if err := s.caches.Set(ctx, req.GetCache(), req.GetKey(), req.GetValue(), ttl, mode); err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.CacheServiceSetResponse{}, nil
}

func (s *cacheServer) Delete(ctx context.Context, req *adminv1.CacheServiceDeleteRequest) (*adminv1.CacheServiceDeleteResponse, error) {
	if req.GetKey() == "" {
		return nil, invalid("cache key is required")
	}
	if err := s.caches.Delete(ctx, req.GetCache(), req.GetKey()); err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.CacheServiceDeleteResponse{}, nil
}

func (s *cacheServer) Keys(ctx context.Context, req *adminv1.CacheServiceKeysRequest) (*adminv1.CacheServiceKeysResponse, error) {
	keys, err := s.caches.Keys(ctx, req.GetCache(), req.GetLinearizable())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.CacheServiceKeysResponse{Keys: keys}, nil
}

func (s *cacheServer) Stats(ctx context.Context, req *adminv1.CacheServiceStatsRequest) (*adminv1.CacheServiceStatsResponse, error) {
	cs, err := s.caches.Stats(ctx, req.GetCache())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.CacheServiceStatsResponse{Caches: cachesPB(cs)}, nil
}

func (s *cacheServer) Clear(ctx context.Context, req *adminv1.CacheServiceClearRequest) (*adminv1.CacheServiceClearResponse, error) {
	if err := s.caches.Clear(ctx, req.GetCache()); err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.CacheServiceClearResponse{}, nil
}
