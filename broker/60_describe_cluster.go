package broker

// DescribeCluster (key 60), versions 0–1.
//
// The cluster id, the active controller (the metadata group's leader) and
// the registered brokers. Authorized operations are not tracked (no ACLs).

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeCluster.Int16(), 0, 1, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeClusterRequest)
	return func(context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
		resp.ClusterID = b.cfg.ClusterID
		resp.ControllerID = b.controllerID()
		resp.EndpointType = 1
		resp.ClusterAuthorizedOperations = -2147483648
		if req.EndpointType != 0 && req.EndpointType != 1 {
			resp.ErrorCode = 42 // INVALID_REQUEST
			resp.ErrorMessage = strPtr("only the broker endpoint type (1) is served")
			return resp
		}
		for _, mb := range b.brokerList(b.meta.View()) {
			db := kmsg.NewDescribeClusterResponseBroker()
			db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
			resp.Brokers = append(resp.Brokers, db)
		}
		return resp
	}
}

// sortedBrokerIDs returns the registered broker ids in order.
func sortedBrokerIDs(v *metadata.View) []int32 {
	return slices.Sorted(maps.Keys(v.Brokers))
}

// splitAddr splits host:port, returning port -1 if malformed.
func splitAddr(addr string) (string, int32) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, -1
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, -1
	}
	return host, int32(p)
}
