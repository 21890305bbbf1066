package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/redact"
)

// readiness is what /readyz reports: not ready, with a reason, until the network is set up; after that, not
// ready while the store does not answer (the node keeps its routes, but it can neither see peers join or leave
// nor keep its lease, and an operator must hear of it).
type readiness struct {
	mu     sync.Mutex
	ready  bool
	reason string
	// storeDown is why the store failed its last probe after start-up; "" while it answers.
	storeDown string
	onSet     func(bool)
}

// set records readiness. The reason is often an error from the store or the cloud, and /readyz serves it without
// authentication, so credentials in it (a URL's userinfo) are redacted here, once for the log and /readyz.
func (r *readiness) set(ok bool, reason string) {
	reason = redact.Text(reason)
	r.update(func() { r.ready, r.reason = ok, reason })
}

// setStore records the outcome of a store probe: "" when the store answered, else the reason.
func (r *readiness) setStore(down string) {
	down = redact.Text(down)
	r.update(func() { r.storeDown = down })
}

func (r *readiness) update(change func()) {
	r.mu.Lock()
	ok0, why0 := r.effective()
	change()
	ok, reason := r.effective()
	r.mu.Unlock()
	if ok != ok0 || reason != why0 {
		if ok {
			klog.Info("ready")
		} else {
			klog.Infof("not ready: %s", reason)
		}
		if r.onSet != nil {
			r.onSet(ok)
		}
	}
}

// effective combines the start-up (or backend) state with the store's; r.mu is held.
func (r *readiness) effective() (bool, string) {
	if r.ready && r.storeDown != "" {
		return false, r.storeDown
	}
	return r.ready, r.reason
}

func (r *readiness) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.effective()
}

// healthHandler serves /healthz (upstream's text), /readyz and /metrics.
func healthHandler(r *readiness, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("flanneld is running"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := r.get()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + reason))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

// serveHealth listens on ip:port until ctx ends. Listening errors are returned at once (port taken, bad address).
func serveHealth(ctx context.Context, ip string, port int, h http.Handler) (<-chan error, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	klog.Infof("serving /healthz, /readyz and /metrics on %s", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return done, nil
}
