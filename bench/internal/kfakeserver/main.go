// Command kfakeserver runs franz-go's fake Kafka cluster (kfake) until
// interrupted, so that `raftka bench --brokers` (or any Kafka client) can be
// pointed at it from another process:
//
//	go run ./bench/internal/kfakeserver -port 19092 &
//	raftka bench produce --brokers 127.0.0.1:19092 --duration 20s
//
// kfake keeps records in memory, does not replicate and never fsyncs: it is
// the reference for what the client reaches against a broker that costs
// almost nothing.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	brokers := flag.Int("brokers", 3, "number of fake brokers")
	port := flag.Int("port", 0, "port of the first broker, the others on the next ports; 0 picks free ports")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(*brokers)}
	if *port > 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
