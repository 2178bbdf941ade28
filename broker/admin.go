package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startAdmin serves /healthz (200 once the broker is registered and
// serving, 503 before) and Prometheus /metrics on AdminAddr.
func (b *Broker) startAdmin() error {
	ln, err := net.Listen("tcp", b.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w (set --admin-addr, or \"\" to disable)", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !b.Ready() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	b.adminAddr = ln.Addr().String()
	b.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("admin server failed", "err", err)
		}
	}()
	return nil
}

// AdminAddr returns the bound admin address, or "" if disabled.
func (b *Broker) AdminAddr() string { return b.adminAddr }
