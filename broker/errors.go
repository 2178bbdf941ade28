package broker

import (
	"context"
	"errors"

	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps an internal error to the Kafka error code a client acts on.
// Unknown errors become UNKNOWN_SERVER_ERROR, which clients do not retry.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, raftlog.ErrNotLeader), errors.Is(err, raftlog.ErrGroupClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, raftlog.ErrProposalDropped), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, raftlog.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, raftlog.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, raftlog.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, raftlog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, raftlog.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, raftlog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, raftlog.ErrOffsetNotAvailable):
		return kerr.OffsetNotAvailable.Code
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, metadata.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, metadata.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	}
	return kerr.UnknownServerError.Code
}

// controllerErrorCode maps errors of metadata changes: a broker that does
// not lead the metadata group answers NOT_CONTROLLER.
func controllerErrorCode(err error) int16 {
	if errors.Is(err, raftlog.ErrNotLeader) {
		return kerr.NotController.Code
	}
	return errorCode(err)
}

// errorMessage returns err's text for responses that carry one.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
