package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gRPC services and the span names (otelgrpc's "{service}/{method}") the
// scenarios refer to.
const (
	catalogService        = "shop.catalog.v1.CatalogService"
	checkoutService       = "shop.checkout.v1.CheckoutService"
	inventoryService      = "shop.inventory.v1.InventoryService"
	recommendationService = "shop.recommendation.v1.RecommendationService"

	opGetProduct          = catalogService + "/GetProduct"
	opListProducts        = catalogService + "/ListProducts"
	opPlaceOrder          = checkoutService + "/PlaceOrder"
	opCheckStock          = inventoryService + "/CheckStock"
	opReserve             = inventoryService + "/Reserve"
	opListRecommendations = recommendationService + "/ListRecommendations"
)

// SQL the simulated databases "run".
const (
	queryProductByID          = "SELECT id, name, category, price_cents FROM products WHERE id = $1"
	queryProductsByIDs        = "SELECT id, name, category, price_cents FROM products WHERE id = ANY($1)"
	queryProductsByCategory   = "SELECT id, name, category, price_cents FROM products WHERE category = $1 ORDER BY popularity DESC LIMIT $2"
	queryProductIDsByCategory = "SELECT id FROM products WHERE category = $1 ORDER BY popularity DESC LIMIT $2"
	queryProductIDsByIDs      = "SELECT id FROM products WHERE id = ANY($1)"
	queryStock                = "SELECT product_id, available FROM inventory WHERE product_id = ANY($1)"
	queryReserve              = "UPDATE inventory SET available = available - r.quantity FROM unnest($1::text[], $2::int[]) AS r(product_id, quantity) WHERE inventory.product_id = r.product_id AND available >= r.quantity"
	queryInsertOrder          = "INSERT INTO orders (id, user_id, total_cents, currency, created_at) VALUES ($1, $2, $3, $4, now())"
	queryPromotions           = "SELECT p.id, p.rule FROM promotions p JOIN promotion_targets t ON t.promotion_id = p.id WHERE t.product_id = ANY($1) AND p.active"
	queryInsertPayment        = "INSERT INTO payments (id, order_id, method, amount_cents, currency, status) VALUES ($1, $2, $3, $4, $5, 'pending')"
	queryUpdatePayment        = "UPDATE payments SET status = $2, provider_id = $3 WHERE id = $1"
	queryInsertShipment       = "INSERT INTO shipments (order_id, user_id, status, created_at) VALUES ($1, $2, 'pending', now())"
)

// Messages. gRPC carries them as JSON (see jsonCodec), HTTP too.
type (
	// Product is one catalog entry.
	Product struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Category   string `json:"category"`
		PriceCents int64  `json:"priceCents"`
	}
	getProductRequest   struct{ ID string }
	listProductsRequest struct {
		Category string
		IDs      []string
		Limit    int
	}
	listProductsResponse struct{ Products []Product }
	// CartItem is one line of a cart.
	CartItem struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	}
	// Cart is one user's cart.
	Cart struct {
		UserID string     `json:"userId"`
		Items  []CartItem `json:"items"`
	}
	stockRequest   struct{ ProductIDs []string }
	stockResponse  struct{ Available map[string]int }
	reserveRequest struct {
		OrderID string
		Items   []CartItem
	}
	reserveResponse    struct{}
	placeOrderRequest  struct{ UserID, PaymentMethod, Currency string }
	placeOrderResponse struct {
		OrderID    string `json:"orderId"`
		TotalCents int64  `json:"totalCents"`
	}
	chargeRequest struct {
		OrderID     string `json:"orderId"`
		UserID      string `json:"userId"`
		Method      string `json:"method"`
		Currency    string `json:"currency"`
		AmountCents int64  `json:"amountCents"`
	}
	chargeResponse         struct{ TransactionID string }
	recommendationRequest  struct{ UserID, ProductID string }
	recommendationResponse struct {
		ProductIDs []string `json:"productIds"`
	}
)

// The product catalog: fixed, so every run has the same products.
var (
	categories   = []string{"books", "kitchen", "garden", "toys", "electronics"}
	products     []Product
	productsByID = map[string]Product{}
)

func init() {
	adjectives := []string{"Compact", "Classic", "Deluxe", "Everyday", "Vintage", "Smart", "Rugged", "Folding"}
	nouns := map[string][]string{
		"books":       {"Atlas", "Cookbook", "Field Guide", "Novel"},
		"kitchen":     {"Kettle", "Skillet", "Knife Set", "Grinder"},
		"garden":      {"Trowel", "Hose", "Planter", "Pruner"},
		"toys":        {"Puzzle", "Kite", "Robot", "Blocks"},
		"electronics": {"Headphones", "Charger", "Speaker", "Lamp"},
	}
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 40 {
		cat := categories[i%len(categories)]
		p := Product{
			ID:         fmt.Sprintf("p%03d", i+1),
			Name:       adjectives[r.IntN(len(adjectives))] + " " + nouns[cat][r.IntN(4)],
			Category:   cat,
			PriceCents: int64(499 + r.IntN(20000)),
		}
		products = append(products, p)
		productsByID[p.ID] = p
	}
}

// cartStore is the state behind the simulated Redis of the cart service.
type cartStore struct {
	mu    sync.Mutex
	items map[string]map[string]int
}

func (c *cartStore) get(user string) Cart {
	c.mu.Lock()
	defer c.mu.Unlock()
	cart := Cart{UserID: user, Items: []CartItem{}}
	for id, q := range c.items[user] {
		cart.Items = append(cart.Items, CartItem{ProductID: id, Quantity: q})
	}
	slices.SortFunc(cart.Items, func(a, b CartItem) int { return strings.Compare(a.ProductID, b.ProductID) })
	return cart
}

func (c *cartStore) add(user, product string, q int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items[user] == nil {
		c.items[user] = map[string]int{}
	}
	c.items[user][product] += q
}

func (c *cartStore) clear(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, user)
}

// stockStore is the state behind inventory's simulated PostgreSQL.
type stockStore struct {
	mu        sync.Mutex
	available map[string]int
}

func newStockStore() *stockStore {
	s := &stockStore{available: map[string]int{}}
	for _, p := range products {
		s.available[p.ID] = 1000
	}
	return s
}

// reserve takes the items out of stock, restocking a product that runs
// low so that the demo runs forever.
func (s *stockStore) reserve(items []CartItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		s.available[it.ProductID] -= it.Quantity
		if s.available[it.ProductID] < 50 {
			s.available[it.ProductID] = 1000
		}
	}
}

func newID(prefix string) string { return fmt.Sprintf("%s_%016x", prefix, shopRand.Uint64()) }

// ---- gateway (HTTP): the shop's public API ----

func (in *instance) registerGateway(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/products", in.gwListProducts)
	mux.HandleFunc("GET /api/products/{id}", in.gwGetProduct)
	mux.HandleFunc("GET /api/recommendations", in.gwRecommendations)
	mux.HandleFunc("GET /api/cart", in.gwViewCart)
	mux.HandleFunc("POST /api/cart/items", in.gwAddToCart)
	mux.HandleFunc("POST /api/checkout", in.gwCheckout)
}

// user reads the caller's user ID and puts it on the server span.
func user(r *http.Request) string {
	u := r.Header.Get("X-User-ID")
	if u == "" {
		u = "anonymous"
	}
	trace.SpanFromContext(r.Context()).SetAttributes(semconv.UserID(u))
	return u
}

// httpStatus maps a downstream error to the gateway's answer.
func httpStatus(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		if he.status < 500 {
			return he.status
		}
		return http.StatusBadGateway
	}
	switch status.Code(err) {
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition, codes.InvalidArgument:
		return http.StatusConflict
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// replyError answers with an error; a server error also becomes an
// exception event on the server span.
func replyError(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		fail(trace.SpanFromContext(r.Context()), err)
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (in *instance) gwListProducts(w http.ResponseWriter, r *http.Request) {
	_ = user(r)
	cat := r.URL.Query().Get("category")
	var resp listProductsResponse
	if err := in.invoke(r.Context(), svcCatalog, opListProducts, &listProductsRequest{Category: cat, Limit: 12}, &resp); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, resp.Products)
}

func (in *instance) gwGetProduct(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	ctx := r.Context()
	id := r.PathValue("id")
	var p Product
	if err := in.invoke(ctx, svcCatalog, opGetProduct, &getProductRequest{ID: id}, &p); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	// Stock and recommendations are fetched concurrently; the page shows
	// without recommendations when they fail.
	var (
		wg    sync.WaitGroup
		stock stockResponse
		recs  recommendationResponse
		serr  error
	)
	wg.Go(func() {
		serr = in.invoke(ctx, svcInventory, opCheckStock, &stockRequest{ProductIDs: []string{id}}, &stock)
	})
	wg.Go(func() {
		_ = in.invoke(ctx, svcRecommendation, opListRecommendations, &recommendationRequest{UserID: u, ProductID: id}, &recs)
	})
	wg.Wait()
	if serr != nil {
		replyError(w, r, httpStatus(serr), serr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"product": p, "available": stock.Available[id], "recommendations": recs.ProductIDs})
}

func (in *instance) gwRecommendations(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	var recs recommendationResponse
	req := &recommendationRequest{UserID: u, ProductID: r.URL.Query().Get("product")}
	if err := in.invoke(r.Context(), svcRecommendation, opListRecommendations, req, &recs); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

func (in *instance) gwViewCart(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	var cart Cart
	if err := in.call(r.Context(), svcCart, http.MethodGet, "/carts/{user}", "/carts/"+u, 0, nil, &cart); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, cart)
}

func (in *instance) gwAddToCart(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	var item CartItem
	if err := json.NewDecoder(r.Body).Decode(&item); err != nil || item.ProductID == "" || item.Quantity < 1 {
		replyError(w, r, http.StatusBadRequest, errors.New("want {\"productId\": ..., \"quantity\": >= 1}"))
		return
	}
	var p Product
	if err := in.invoke(r.Context(), svcCatalog, opGetProduct, &getProductRequest{ID: item.ProductID}, &p); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	if err := in.call(r.Context(), svcCart, http.MethodPost, "/carts/{user}/items", "/carts/"+u+"/items", 0, item, nil); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusCreated, item)
}

func (in *instance) gwCheckout(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	var body struct {
		PaymentMethod string `json:"paymentMethod"`
		Currency      string `json:"currency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.PaymentMethod == "" {
		replyError(w, r, http.StatusBadRequest, errors.New("want {\"paymentMethod\": ..., \"currency\": ...}"))
		return
	}
	var resp placeOrderResponse
	req := &placeOrderRequest{UserID: u, PaymentMethod: body.PaymentMethod, Currency: body.Currency}
	if err := in.invoke(r.Context(), svcCheckout, opPlaceOrder, req, &resp); err != nil {
		replyError(w, r, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// ---- catalog (gRPC) ----

func (in *instance) catalogDesc() *grpc.ServiceDesc {
	return serviceDesc(catalogService,
		unary(catalogService, "GetProduct", in.getProduct),
		unary(catalogService, "ListProducts", in.listProducts),
	)
}

// serverFailure turns an internal error into a gRPC status and records it
// on the server span.
func serverFailure(ctx context.Context, c codes.Code, err error) error {
	fail(trace.SpanFromContext(ctx), err)
	return status.Error(c, err.Error())
}

func (in *instance) getProduct(ctx context.Context, req *getProductRequest) (*Product, error) {
	if in.shop.faults.on(scOperationLatency) {
		_ = work(ctx, logNormal(120*time.Millisecond, 0.3))
	}
	key := "product:" + req.ID
	_ = in.cache.do(ctx, "GET", "GET "+key, nil)
	if shopRand.Float64() < 0.3 { // cache miss
		q := query{op: "SELECT", table: "products", text: queryProductByID, median: 3 * time.Millisecond, rows: 1, failRate: 0.002}
		if err := in.db.exec(ctx, q); err != nil {
			return nil, serverFailure(ctx, codes.Internal, fmt.Errorf("load product %s: %w", req.ID, err))
		}
		_ = in.cache.do(ctx, "SET", "SET "+key+" ? EX 300", nil)
	}
	p, ok := productsByID[req.ID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no product %q", req.ID)
	}
	_ = work(ctx, logNormal(300*time.Microsecond, 0.5))
	return &p, nil
}

func (in *instance) listProducts(ctx context.Context, req *listProductsRequest) (*listProductsResponse, error) {
	var out []Product
	for _, p := range products {
		if len(req.IDs) > 0 && slices.Contains(req.IDs, p.ID) || len(req.IDs) == 0 && (req.Category == "" || p.Category == req.Category) {
			out = append(out, p)
		}
	}
	if req.Limit > 0 && len(out) > req.Limit {
		out = out[:req.Limit]
	}
	byIDs := len(req.IDs) > 0
	if in.shop.faults.on(scNPlusOne) {
		text := queryProductIDsByCategory
		if byIDs {
			text = queryProductIDsByIDs
		}
		if err := in.db.exec(ctx, query{op: "SELECT", table: "products", text: text, median: 2 * time.Millisecond, rows: len(out)}); err != nil {
			return nil, serverFailure(ctx, codes.Internal, err)
		}
		for range out {
			if err := in.db.exec(ctx, query{op: "SELECT", table: "products", text: queryProductByID, median: 1500 * time.Microsecond, rows: 1}); err != nil {
				return nil, serverFailure(ctx, codes.Internal, err)
			}
		}
	} else {
		text := queryProductsByCategory
		if byIDs {
			text = queryProductsByIDs
		}
		q := query{op: "SELECT", table: "products", text: text, median: 6 * time.Millisecond, rows: len(out), failRate: 0.002}
		if err := in.db.exec(ctx, q); err != nil {
			return nil, serverFailure(ctx, codes.Internal, fmt.Errorf("list products: %w", err))
		}
	}
	_ = work(ctx, logNormal(time.Millisecond, 0.5))
	return &listProductsResponse{Products: out}, nil
}

// ---- cart (HTTP) ----

var errRedisTimeout = errors.New("redis: i/o timeout")

func (in *instance) registerCart(mux *http.ServeMux) {
	mux.HandleFunc("GET /carts/{user}", func(w http.ResponseWriter, r *http.Request) {
		u := r.PathValue("user")
		_ = in.cache.do(r.Context(), "HGETALL", "HGETALL cart:"+u, nil)
		writeJSON(w, http.StatusOK, in.shop.carts.get(u))
	})
	mux.HandleFunc("POST /carts/{user}/items", func(w http.ResponseWriter, r *http.Request) {
		u := r.PathValue("user")
		var item CartItem
		if err := json.NewDecoder(r.Body).Decode(&item); err != nil {
			replyError(w, r, http.StatusBadRequest, err)
			return
		}
		var cmdErr error
		if in.shop.faults.on(scErrorRate) && shopRand.Float64() < 0.25 {
			cmdErr = errRedisTimeout
		}
		text := fmt.Sprintf("HINCRBY cart:%s %s %d", u, item.ProductID, item.Quantity)
		if err := in.cache.do(r.Context(), "HINCRBY", text, cmdErr); err != nil {
			replyError(w, r, http.StatusServiceUnavailable, fmt.Errorf("add %s to cart of %s: %w", item.ProductID, u, err))
			return
		}
		_ = in.cache.do(r.Context(), "EXPIRE", "EXPIRE cart:"+u+" 86400", nil)
		in.shop.carts.add(u, item.ProductID, item.Quantity)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /carts/{user}", func(w http.ResponseWriter, r *http.Request) {
		u := r.PathValue("user")
		_ = in.cache.do(r.Context(), "DEL", "DEL cart:"+u, nil)
		in.shop.carts.clear(u)
		w.WriteHeader(http.StatusNoContent)
	})
}

// ---- checkout (gRPC) ----

func (in *instance) checkoutDesc() *grpc.ServiceDesc {
	return serviceDesc(checkoutService, unary(checkoutService, "PlaceOrder", in.placeOrder))
}

// retryable says whether an HTTP call is worth repeating: a server error
// or no answer at all.
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status >= 500
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

func (in *instance) placeOrder(ctx context.Context, req *placeOrderRequest) (*placeOrderResponse, error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(semconv.UserID(req.UserID), attribute.String("shop.payment.method", req.PaymentMethod),
		attribute.String("shop.currency", req.Currency))
	var cart Cart
	if err := in.call(ctx, svcCart, http.MethodGet, "/carts/{user}", "/carts/"+req.UserID, 0, nil, &cart); err != nil {
		return nil, serverFailure(ctx, codes.Unavailable, fmt.Errorf("load cart: %w", err))
	}
	if len(cart.Items) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "cart is empty")
	}
	ids := make([]string, len(cart.Items))
	for i, it := range cart.Items {
		ids[i] = it.ProductID
	}
	var prods listProductsResponse
	if err := in.invoke(ctx, svcCatalog, opListProducts, &listProductsRequest{IDs: ids}, &prods); err != nil {
		return nil, serverFailure(ctx, codes.Unavailable, fmt.Errorf("price cart: %w", err))
	}
	var total int64
	for _, it := range cart.Items {
		total += productsByID[it.ProductID].PriceCents * int64(it.Quantity)
	}
	if in.version == checkoutCanaryVersion {
		if err := in.applyPromotions(ctx, ids); err != nil {
			return nil, serverFailure(ctx, codes.Internal, err)
		}
	}
	orderID := newID("ord")
	span.SetAttributes(attribute.String("shop.order.id", orderID), attribute.Int("shop.order.items", len(cart.Items)))
	if err := in.invoke(ctx, svcInventory, opReserve, &reserveRequest{OrderID: orderID, Items: cart.Items}, &reserveResponse{}); err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return nil, err
		}
		return nil, serverFailure(ctx, codes.Unavailable, fmt.Errorf("reserve stock: %w", err))
	}
	charge := chargeRequest{OrderID: orderID, UserID: req.UserID, Method: req.PaymentMethod, Currency: req.Currency, AmountCents: total}
	var err error
	for attempt := range 3 {
		var resp chargeResponse
		if err = in.call(ctx, svcPayment, http.MethodPost, "/charges", "/charges", attempt, charge, &resp); !retryable(err) {
			break
		}
	}
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusPaymentRequired {
			return nil, status.Error(codes.FailedPrecondition, "payment declined")
		}
		return nil, serverFailure(ctx, codes.Unavailable, fmt.Errorf("charge order %s: %w", orderID, err))
	}
	q := query{op: "INSERT", table: "orders", text: queryInsertOrder, median: 4 * time.Millisecond, rows: -1, failRate: 0.002}
	if err := in.db.exec(ctx, q); err != nil {
		return nil, serverFailure(ctx, codes.Internal, fmt.Errorf("store order %s: %w", orderID, err))
	}
	body, _ := json.Marshal(map[string]any{"orderId": orderID, "userId": req.UserID, "items": cart.Items})
	if err := in.shop.orders.publish(ctx, in.tracer, in.prop, orderID, body); err != nil {
		in.shop.log.Warn("publish order", "order", orderID, "err", err)
	}
	_ = in.call(ctx, svcCart, http.MethodDelete, "/carts/{user}", "/carts/"+req.UserID, 0, nil, nil)
	return &placeOrderResponse{OrderID: orderID, TotalCents: total}, nil
}

// applyPromotions is the code path new in checkout 1.5.0: an unindexed
// promotions query and a rule evaluation that sometimes fails.
func (in *instance) applyPromotions(ctx context.Context, ids []string) error {
	ctx, span := in.tracer.Start(ctx, "applyPromotions", trace.WithAttributes(
		semconv.CodeFunctionName("checkout.(*Service).applyPromotions"), attribute.Int("shop.promotion.candidates", len(ids))))
	defer span.End()
	q := query{op: "SELECT", table: "promotions", text: queryPromotions, median: 180 * time.Millisecond, rows: shopRand.IntN(4)}
	if err := in.db.exec(ctx, q); err != nil {
		fail(span, err)
		return err
	}
	_ = work(ctx, logNormal(60*time.Millisecond, 0.4))
	if shopRand.Float64() < 0.05 {
		err := errors.New("promotions: rule set for currency is nil")
		fail(span, err)
		return err
	}
	return nil
}

// ---- payment (HTTP) and the external payment provider ----

func (in *instance) registerPayment(mux *http.ServeMux) {
	mux.HandleFunc("POST /charges", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		span := trace.SpanFromContext(ctx)
		var req chargeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			replyError(w, r, http.StatusBadRequest, err)
			return
		}
		span.SetAttributes(attribute.String("shop.payment.method", req.Method), attribute.String("shop.order.id", req.OrderID),
			attribute.Int64("shop.payment.amount_cents", req.AmountCents))
		payID := newID("pay")
		if err := in.db.exec(ctx, query{op: "INSERT", table: "payments", text: queryInsertPayment, median: 3 * time.Millisecond, rows: -1}); err != nil {
			replyError(w, r, http.StatusInternalServerError, err)
			return
		}
		if shopRand.Float64() < 0.02 {
			// A declined card is the customer's problem, not the service's:
			// the exception is recorded but the span status stays unset.
			span.RecordError(fmt.Errorf("card declined for order %s", req.OrderID), trace.WithStackTrace(true))
			writeJSON(w, http.StatusPaymentRequired, map[string]string{"error": "card declined"})
			return
		}
		var resp struct {
			ID string `json:"id"`
		}
		var err error
		for attempt := range 3 {
			err = callHTTP(ctx, in.http, http.MethodPost, in.shop.pspURL, "/v1/charges", "/v1/charges", attempt, req, &resp)
			if !retryable(err) {
				break
			}
		}
		if err != nil {
			replyError(w, r, http.StatusBadGateway, fmt.Errorf("payment provider: %w", err))
			return
		}
		if err := in.db.exec(ctx, query{op: "UPDATE", table: "payments", text: queryUpdatePayment, median: 3 * time.Millisecond, rows: -1}); err != nil {
			replyError(w, r, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, chargeResponse{TransactionID: payID})
	})
}

// pspHandler is the external payment provider: a third party, so it is not
// instrumented and only payment's client spans show it.
func (s *shop) pspHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/charges", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if s.faults.on(scRetryStorm) && shopRand.Float64() < 0.6 || shopRand.Float64() < 0.005 {
			_ = work(ctx, logNormal(30*time.Millisecond, 0.3))
			http.Error(w, `{"error":"upstream acquirer unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		d := logNormal(80*time.Millisecond, 0.4)
		if s.faults.on(scSlowDependency) {
			d += logNormal(600*time.Millisecond, 0.25)
		}
		_ = work(ctx, d)
		writeJSON(w, http.StatusOK, map[string]string{"id": newID("ch"), "status": "succeeded"})
	})
	return mux
}

// ---- inventory (gRPC) ----

func (in *instance) inventoryDesc() *grpc.ServiceDesc {
	return serviceDesc(inventoryService,
		unary(inventoryService, "CheckStock", in.checkStock),
		unary(inventoryService, "Reserve", in.reserve),
	)
}

// starve is the service-latency scenario: the whole inventory service is
// slow before it does any work.
func (in *instance) starve(ctx context.Context) {
	if in.shop.faults.on(scServiceLatency) {
		_ = work(ctx, logNormal(150*time.Millisecond, 0.3))
	}
}

func (in *instance) checkStock(ctx context.Context, req *stockRequest) (*stockResponse, error) {
	in.starve(ctx)
	if err := in.db.exec(ctx, query{op: "SELECT", table: "inventory", text: queryStock, median: 2 * time.Millisecond, rows: len(req.ProductIDs)}); err != nil {
		return nil, serverFailure(ctx, codes.Internal, err)
	}
	in.shop.stock.mu.Lock()
	avail := map[string]int{}
	for _, id := range req.ProductIDs {
		avail[id] = in.shop.stock.available[id]
	}
	in.shop.stock.mu.Unlock()
	return &stockResponse{Available: avail}, nil
}

func (in *instance) reserve(ctx context.Context, req *reserveRequest) (*reserveResponse, error) {
	in.starve(ctx)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("shop.order.id", req.OrderID))
	q := query{op: "UPDATE", table: "inventory", text: queryReserve, median: 5 * time.Millisecond, rows: -1, failRate: 0.003}
	if err := in.db.exec(ctx, q); err != nil {
		return nil, serverFailure(ctx, codes.Aborted, fmt.Errorf("reserve order %s: %w", req.OrderID, err))
	}
	if shopRand.Float64() < 0.01 {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is out of stock", req.Items[0].ProductID)
	}
	in.shop.stock.reserve(req.Items)
	return &reserveResponse{}, nil
}

// ---- recommendation (gRPC) ----

func (in *instance) recommendationDesc() *grpc.ServiceDesc {
	return serviceDesc(recommendationService,
		unary(recommendationService, "ListRecommendations", in.listRecommendations))
}

func (in *instance) listRecommendations(ctx context.Context, req *recommendationRequest) (*recommendationResponse, error) {
	key := "recs:" + req.ProductID
	var cacheErr error
	if shopRand.Float64() < 0.02 {
		cacheErr = errRedisTimeout // handled: treated as a miss
	}
	if in.cache.do(ctx, "GET", "GET "+key, cacheErr) == nil && shopRand.Float64() < 0.5 {
		ids := make([]string, 4)
		for i := range ids {
			ids[i] = products[shopRand.IntN(len(products))].ID
		}
		return &recommendationResponse{ProductIDs: ids}, nil
	}
	cat := categories[shopRand.IntN(len(categories))]
	if p, ok := productsByID[req.ProductID]; ok {
		cat = p.Category
	}
	var cands listProductsResponse
	if err := in.invoke(ctx, svcCatalog, opListProducts, &listProductsRequest{Category: cat, Limit: 8}, &cands); err != nil {
		return nil, serverFailure(ctx, codes.Unavailable, fmt.Errorf("load candidates: %w", err))
	}
	_, span := in.tracer.Start(ctx, "rankCandidates", trace.WithAttributes(attribute.Int("shop.recommendation.candidates", len(cands.Products))))
	_ = work(ctx, logNormal(4*time.Millisecond, 0.5))
	ids := []string{}
	for _, p := range cands.Products {
		if p.ID != req.ProductID && len(ids) < 4 {
			ids = append(ids, p.ID)
		}
	}
	span.End()
	_ = in.cache.do(ctx, "SET", "SET "+key+" ? EX 600", nil)
	return &recommendationResponse{ProductIDs: ids}, nil
}

// ---- shipping (orders consumer) ----

// consume processes orders until ctx is done, then drains what is left.
// Each message starts a new trace whose CONSUMER span links to the
// PRODUCER span that sent it, as asynchronous work should.
func (in *instance) consume(ctx context.Context, q *queue) {
	for {
		select {
		case m := <-q.ch:
			in.process(m)
		case <-ctx.Done():
			for {
				select {
				case m := <-q.ch:
					in.process(m)
				default:
					return
				}
			}
		}
	}
}

func (in *instance) process(m message) {
	producer := trace.SpanContextFromContext(in.prop.Extract(context.Background(), propagation.MapCarrier(m.headers)))
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithNewRoot(),
		trace.WithAttributes(messagingAttrs(in.shop.orders.topic, "process", semconv.MessagingOperationTypeProcess, m.id)...),
		trace.WithAttributes(semconv.MessagingConsumerGroupName("shipping"), semconv.MessagingMessageBodySize(len(m.body))),
	}
	if producer.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer, Attributes: []attribute.KeyValue{
			attribute.String("messaging.link.reason", "producer")}}))
	}
	ctx, span := in.tracer.Start(context.Background(), "process "+in.shop.orders.topic, opts...)
	defer span.End()
	var order struct {
		OrderID string     `json:"orderId"`
		UserID  string     `json:"userId"`
		Items   []CartItem `json:"items"`
	}
	if err := json.Unmarshal(m.body, &order); err != nil {
		fail(span, fmt.Errorf("decode order message %s: %w", m.id, err))
		return
	}
	span.SetAttributes(attribute.String("shop.order.id", order.OrderID), semconv.UserID(order.UserID))
	_ = work(ctx, logNormal(2*time.Millisecond, 0.5))
	q := query{op: "INSERT", table: "shipments", text: queryInsertShipment, median: 4 * time.Millisecond, rows: -1, failRate: 0.002}
	if err := in.db.exec(ctx, q); err != nil {
		fail(span, fmt.Errorf("create shipment for %s: %w", order.OrderID, err))
	}
}
