package broker

// ApiVersions (key 18), versions 0–3.
//
// Built from the registry: every API a file here registers is listed with
// its served version range. A request at a version above 3 is answered at
// v0 with UNSUPPORTED_VERSION and the list (KIP-511), which clients use to
// retry at a version both sides know.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ApiVersions.Int16(), 0, 3, handleApiVersions) }

func handleApiVersions(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ApiVersionsRequest)
	return immediate(apiVersionsResponse(req.Version))
}

func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	for _, a := range sortedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}
