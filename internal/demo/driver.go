package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxInFlight bounds the driver's concurrent requests: when the shop is
// slower than the rate, requests are skipped rather than piled up.
const maxInFlight = 256

// driver sends a steady, varied load to the gateway: Poisson arrivals at
// the configured rate, a mix of browsing, carts and checkouts by many users.
// It is the shop's customers, so it is not instrumented: the gateway's
// server spans are the roots of the traces.
type driver struct {
	base   string
	client *http.Client
	log    *slog.Logger

	cancel   context.CancelFunc
	loopDone chan struct{}
	inflight sync.WaitGroup
	slots    chan struct{}

	sent, failed, skipped atomic.Int64

	mu       sync.Mutex
	withCart []string // users who recently put something in their cart
}

func startDriver(base string, rate float64, log *slog.Logger) *driver {
	ctx, cancel := context.WithCancel(context.Background())
	d := &driver{
		base:     base,
		client:   &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}},
		log:      log,
		cancel:   cancel,
		loopDone: make(chan struct{}),
		slots:    make(chan struct{}, maxInFlight),
	}
	go d.loop(ctx, rate)
	return d
}

// stop ends the arrivals and waits for the requests in flight.
func (d *driver) stop() {
	d.cancel()
	<-d.loopDone
	d.inflight.Wait()
	d.log.Info("traffic driver stopped", "sent", d.sent.Load(), "failed", d.failed.Load(), "skipped", d.skipped.Load())
}

func (d *driver) loop(ctx context.Context, rate float64) {
	defer close(d.loopDone)
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next = next.Add(time.Duration(driverRand.ExpFloat64() / rate * float64(time.Second)))
		if now := time.Now(); next.Before(now.Add(-time.Second)) {
			next = now // fell behind (a paused process): do not burst to catch up
		}
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case d.slots <- struct{}{}:
		default:
			d.skipped.Add(1)
			continue
		}
		d.inflight.Add(1)
		go func() {
			defer func() {
				<-d.slots
				d.inflight.Done()
			}()
			d.one()
		}()
	}
}

// pickUser returns one of 2000 users, a few of whom are much more active
// than the rest.
func pickUser() string {
	return "u" + strconv.Itoa(1+int(math.Pow(driverRand.Float64(), 2.5)*2000))
}

func weighted[T any](items []T, weights []int) T {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := driverRand.IntN(total)
	for i, w := range weights {
		if n < w {
			return items[i]
		}
		n -= w
	}
	return items[len(items)-1]
}

var (
	paymentMethods = []string{"card", "paypal", "apple_pay", "gift_card"}
	paymentWeights = []int{60, 20, 15, 5}
	currencies     = []string{"USD", "EUR", "GBP"}
	currencyWeight = []int{60, 30, 10}
)

type action int

const (
	actBrowse action = iota
	actProduct
	actRecommend
	actAddToCart
	actViewCart
	actCheckout
)

var (
	actions       = []action{actBrowse, actProduct, actRecommend, actAddToCart, actViewCart, actCheckout}
	actionWeights = []int{25, 28, 7, 22, 6, 12}
)

// one sends one request of a randomly chosen kind.
func (d *driver) one() {
	u := pickUser()
	var (
		method = http.MethodGet
		path   string
		body   any
	)
	switch weighted(actions, actionWeights) {
	case actBrowse:
		path = "/api/products?category=" + categories[driverRand.IntN(len(categories))]
	case actProduct:
		path = "/api/products/" + products[driverRand.IntN(len(products))].ID
	case actRecommend:
		path = "/api/recommendations?product=" + products[driverRand.IntN(len(products))].ID
	case actViewCart:
		path = "/api/cart"
	case actCheckout:
		if cu, ok := d.takeCartUser(); ok {
			u, method, path = cu, http.MethodPost, "/api/checkout"
			body = map[string]string{"paymentMethod": weighted(paymentMethods, paymentWeights), "currency": weighted(currencies, currencyWeight)}
			break
		}
		fallthrough
	case actAddToCart:
		method, path = http.MethodPost, "/api/cart/items"
		body = CartItem{ProductID: products[driverRand.IntN(len(products))].ID, Quantity: 1 + int(math.Pow(driverRand.Float64(), 3)*4)}
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, d.base+path, rd)
	if err != nil {
		d.failed.Add(1)
		return
	}
	req.Header.Set("X-User-ID", u)
	req.Header.Set("Content-Type", "application/json")
	d.sent.Add(1)
	resp, err := d.client.Do(req)
	if err != nil {
		d.failed.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		d.failed.Add(1)
	}
	if path == "/api/cart/items" && resp.StatusCode == http.StatusCreated {
		d.addCartUser(u)
	}
}

func (d *driver) addCartUser(u string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.withCart) >= 500 {
		d.withCart = d.withCart[1:]
	}
	d.withCart = append(d.withCart, u)
}

func (d *driver) takeCartUser() (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.withCart) == 0 {
		return "", false
	}
	i := driverRand.IntN(len(d.withCart))
	u := d.withCart[i]
	d.withCart[i] = d.withCart[len(d.withCart)-1]
	d.withCart = d.withCart[:len(d.withCart)-1]
	return u, true
}
