package overrides

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/storage"
)

// TenantStatus is one tenant's effective limits and what they refused.
type TenantStatus struct {
	Tenant string `json:"tenant"`
	// Listed is whether the file has an entry for the tenant (else the
	// "*" entry and the defaults apply).
	Listed bool   `json:"listed"`
	Limits Limits `json:"limits"`
	// Hits counts the refusals since the start, by limit (every limit
	// present; see Limit for what one hit is).
	Hits map[string]int64 `json:"hits"`
	// RunningQueries are the queries started and not done.
	RunningQueries int64 `json:"running_queries"`
	// CountedAs is OtherTenant when the tenant is beyond the tenant bound
	// and shares its state and counts with the others beyond it.
	CountedAs string `json:"counted_as,omitempty"`
}

// Status is every known tenant's status: the listed ones and those seen
// since the start.
type Status struct {
	// File is the overrides file ("" for none).
	File string `json:"file"`
	// LastReload is when the file was last loaded (zero for never).
	LastReload time.Time `json:"last_reload"`
	// LastError is why the current file was rejected, if it was: the
	// limits in force are those of the last good file.
	LastError string `json:"last_error,omitempty"`
	// Default are the limits of the tenants the file does not list.
	Default Limits `json:"default"`
	// Tenants are sorted by name; OtherTenant, if present, stands for the
	// tenants beyond the bound.
	Tenants []TenantStatus `json:"tenants"`
}

// Tenant returns the tenant's status.
func (o *Overrides) Tenant(tenant string) TenantStatus {
	_, listed := o.cur.Load().Tenants[tenant]
	st := o.state(tenant)
	ts := TenantStatus{Tenant: tenant, Listed: listed, Limits: o.For(tenant), Hits: st.hitMap(), RunningQueries: st.running.Load()}
	if st == o.other && tenant != OtherTenant {
		ts.CountedAs = OtherTenant
	}
	return ts
}

func (s *tenantState) hitMap() map[string]int64 {
	m := make(map[string]int64, numLimits)
	for l := range numLimits {
		m[l.String()] = s.hits[l].Load()
	}
	return m
}

// Status returns every known tenant's status.
func (o *Overrides) Status() Status {
	last, errMsg := o.reloadStatus()
	p := o.cur.Load()
	names := map[string]bool{}
	for t := range p.Tenants {
		names[t] = true
	}
	o.tenants.Range(func(k, _ any) bool {
		names[k.(string)] = true
		return true
	})
	s := Status{File: o.path, LastReload: last, LastError: errMsg, Default: p.Default, Tenants: []TenantStatus{}}
	for t := range names {
		s.Tenants = append(s.Tenants, o.Tenant(t))
	}
	if o.other.touched() {
		s.Tenants = append(s.Tenants, TenantStatus{Tenant: OtherTenant, Limits: p.Default, Hits: o.other.hitMap(), RunningQueries: o.other.running.Load()})
	}
	slices.SortFunc(s.Tenants, func(a, b TenantStatus) int {
		switch {
		case a.Tenant < b.Tenant:
			return -1
		case a.Tenant > b.Tenant:
			return 1
		}
		return 0
	})
	return s
}

// touched reports whether the state has counted anything.
func (s *tenantState) touched() bool {
	if s.running.Load() != 0 {
		return true
	}
	for l := range numLimits {
		if s.hits[l].Load() != 0 {
			return true
		}
	}
	return false
}

// Handler answers GET with the JSON TenantStatus of the request's tenant
// (storage.TenantFrom; Options.DefaultTenant without one), or with the
// JSON Status of every tenant given ?all=1, which the caller restricts to
// administrators. It is meant for GET /api/v1/limits.
func (o *Overrides) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpapi.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		switch all := r.URL.Query().Get("all"); all {
		case "1", "true":
			httpapi.WriteJSON(w, http.StatusOK, o.Status())
			return
		case "", "0", "false":
		default:
			httpapi.WriteError(w, http.StatusBadRequest, "all must be 1 or 0")
			return
		}
		tenant, ok := storage.TenantFrom(r.Context())
		if !ok {
			tenant = o.opts.DefaultTenant
		}
		if strings.Contains(tenant, storage.TenantSeparator) {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%q names several tenants: limits are per tenant; ask one, or all=1 with the admin right", tenant))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, o.Tenant(tenant))
	})
}
