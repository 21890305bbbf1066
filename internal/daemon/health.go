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

// readiness is what /readyz reports: not ready, with a reason, until the network is set up.
type readiness struct {
	mu     sync.Mutex
	ready  bool
	reason string
	onSet  func(bool)
}

// set records readiness. The reason is often an error from the store or the cloud, and /readyz serves it without
// authentication, so credentials in it (a URL's userinfo) are redacted here, once for the log and /readyz.
func (r *readiness) set(ok bool, reason string) {
	reason = redact.Text(reason)
	r.mu.Lock()
	changed := r.ready != ok || r.reason != reason
	r.ready, r.reason = ok, reason
	r.mu.Unlock()
	if changed {
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

func (r *readiness) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
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
