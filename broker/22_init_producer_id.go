package broker

// InitProducerId (key 22), versions 0–4.
//
// Idempotent producers get a fresh producer id with epoch 0. Ids come from
// blocks reserved in the metadata log, so they are unique across brokers
// and restarts. Transactional ids are not served yet: such requests get
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report instead of
// retrying forever.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.InitProducerID.Int16(), 0, 4, handleInitProducerID) }

func handleInitProducerID(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.InitProducerIDRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		if req.TransactionalID != nil {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return resp
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		id, err := b.producerIDs.allocate(ctx)
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			b.log.Warn("allocating producer id", "err", err)
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
		return resp
	}
}
