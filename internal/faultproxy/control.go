package faultproxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ControlHandler returns an HTTP API that drives p, for scripts and for
// processes other than the one that started the proxy. Each fault is a POST
// whose query carries the argument; it answers 204, or 400 with a message
// when the argument does not parse:
//
//	POST /latency?d=200ms          SetLatency
//	POST /blackhole?on=true        Blackhole
//	POST /hold?d=5s                Hold
//	POST /reset-connections        ResetConnections
//	POST /reset-next?n=1           ResetNext
//	POST /drop-answer-next?n=1     DropAnswerNext
//	POST /throttle-next?n=1        ThrottleNext
//	POST /throttle-rate?f=0.1      SetThrottleRate
//	POST /fail5xx-next?n=1         Fail5xxNext
//	POST /reset-stats              ResetStats
//	GET  /stats                    Stats, as a JSON object
func (p *Proxy) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	duration := func(set func(time.Duration)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			d, err := time.ParseDuration(r.URL.Query().Get("d"))
			answer(w, err, func() { set(d) })
		}
	}
	count := func(set func(int)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n, err := strconv.Atoi(r.URL.Query().Get("n"))
			answer(w, err, func() { set(n) })
		}
	}
	mux.Handle("POST /latency", duration(p.SetLatency))
	mux.Handle("POST /hold", duration(p.Hold))
	mux.Handle("POST /reset-next", count(p.ResetNext))
	mux.Handle("POST /drop-answer-next", count(p.DropAnswerNext))
	mux.Handle("POST /throttle-next", count(p.ThrottleNext))
	mux.Handle("POST /fail5xx-next", count(p.Fail5xxNext))
	mux.HandleFunc("POST /blackhole", func(w http.ResponseWriter, r *http.Request) {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		answer(w, err, func() { p.Blackhole(on) })
	})
	mux.HandleFunc("POST /throttle-rate", func(w http.ResponseWriter, r *http.Request) {
		f, err := strconv.ParseFloat(r.URL.Query().Get("f"), 64)
		answer(w, err, func() { p.SetThrottleRate(f) })
	})
	mux.HandleFunc("POST /reset-connections", func(w http.ResponseWriter, r *http.Request) {
		answer(w, nil, p.ResetConnections)
	})
	mux.HandleFunc("POST /reset-stats", func(w http.ResponseWriter, r *http.Request) {
		answer(w, nil, p.ResetStats)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Stats())
	})
	return mux
}

// answer runs apply and answers 204, or answers 400 when the argument did
// not parse.
func answer(w http.ResponseWriter, parseErr error, apply func()) {
	if parseErr != nil {
		http.Error(w, fmt.Sprintf("faultproxy: bad argument: %v", parseErr), http.StatusBadRequest)
		return
	}
	apply()
	w.WriteHeader(http.StatusNoContent)
}
