package admin

import (
	"context"
	"time"

	adminv1 "github.com/gouwsgi/gouwsgi/proto/gouwsgi/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type alarmServer struct {
	adminv1.UnimplementedAlarmServiceServer
	alarms   Alarms
	stopping <-chan struct{} // closed when the server shuts down
}

func (s *alarmServer) List(ctx context.Context, req *adminv1.AlarmServiceListRequest) (*adminv1.AlarmServiceListResponse, error) {
	as, err := s.alarms.List(ctx, req.GetIncludeAcknowledged())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &adminv1.AlarmServiceListResponse{Alarms: make([]*adminv1.Alarm, 0, len(as))}
	for _, a := range as {
		resp.Alarms = append(resp.Alarms, alarmPB(a))
	}
	return resp, nil
}

func (s *alarmServer) Raise(ctx context.Context, req *adminv1.AlarmServiceRaiseRequest) (*adminv1.AlarmServiceRaiseResponse, error) {
	if req.GetName() == "" || req.GetMessage() == "" {
		return nil, invalid("alarm name and message are both required")
	}
	a, err := s.alarms.Raise(ctx, req.GetName(), req.GetMessage())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.AlarmServiceRaiseResponse{Alarm: alarmPB(a)}, nil
}

func (s *alarmServer) Acknowledge(ctx context.Context, req *adminv1.AlarmServiceAcknowledgeRequest) (*adminv1.AlarmServiceAcknowledgeResponse, error) {
	if req.GetId() == 0 {
		return nil, invalid("alarm id is required (ids start at 1)")
	}
	a, err := s.alarms.Acknowledge(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &adminv1.AlarmServiceAcknowledgeResponse{Alarm: alarmPB(a)}, nil
}

// Watch forwards events until the client goes away, the source closes its
// channel, or the server stops.
func (s *alarmServer) Watch(_ *adminv1.AlarmServiceWatchRequest, stream grpc.ServerStreamingServer[adminv1.AlarmServiceWatchResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	events, err := s.alarms.Watch(ctx)
	if err != nil {
		return toStatus(err)
	}
	// Headers tell the client that it is subscribed: an alarm raised after
	// stream.Header() returns is delivered.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			t := adminv1.AlarmEventType_ALARM_EVENT_TYPE_RAISED
			if ev.Type == AlarmAcknowledged {
				t = adminv1.AlarmEventType_ALARM_EVENT_TYPE_ACKNOWLEDGED
			}
			if err := stream.Send(&adminv1.AlarmServiceWatchResponse{Type: t, Alarm: alarmPB(ev.Alarm)}); err != nil {
				return err
			}
		}
	}
}

func alarmPB(a Alarm) *adminv1.Alarm {
	pa := &adminv1.Alarm{
		Id: a.ID, Name: a.Name, Source: a.Source, Message: a.Message, NodeId: a.NodeID,
		Count: a.Count, Acknowledged: a.Acknowledged,
	}
	if !a.RaisedAt.IsZero() {
		pa.RaisedAt = timestamppb.New(a.RaisedAt)
	}
	if !a.AcknowledgedAt.IsZero() {
		pa.AcknowledgedAt = timestamppb.New(a.AcknowledgedAt)
	}
	pa.OwnerNodeId, pa.Outcome, pa.Runs, pa.LastRaisedAt = a.Owner, a.Outcome, a.Runs, timestampOrNil(a.LastRaisedAt)
	for _, r := range a.Raisers {
		pa.Raisers = append(pa.Raisers, &adminv1.AlarmRaiser{NodeId: r.NodeID, Name: r.Name, Count: r.Count,
			FirstRaisedAt: timestampOrNil(r.FirstRaisedAt), LastRaisedAt: timestampOrNil(r.LastRaisedAt)})
	}
	return pa
}

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
