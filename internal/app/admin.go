package app

import (
	"net/http"
	"strings"

	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/tenant"
)

// The admin listener (admin_listen, --admin-listen) serves the admin
// endpoints (/api/v1/admin/*, /api/v1/limits?all=1) and /debug/pprof/*
// without credentials, in plain text, on an address the configuration
// keeps on loopback (config.validateAdminListen): whoever can reach it
// runs on the machine already. The tenant of a maintenance request is
// still its X-Scope-OrgID (with multitenancy) or the single tenant; no
// token is asked for, and profiles need no tenant. On the query port the same endpoints keep needing
// the admin right; without authentication, they are refused there once
// the admin listener is on, so that moving them to localhost closes them
// on the public port.

// adminRoute reports whether r is for an endpoint the admin listener
// serves: those queryNeed says need the admin right.
func adminRoute(r *http.Request) bool {
	n, guarded := queryNeed(r)
	return guarded && n == tenant.NeedAdmin
}

// listenAdmin opens the admin listener when one is configured.
func (p *process) listenAdmin() error {
	ln, err := Listen(config.Listener{Name: "admin listener", Addr: p.cfg.AdminListen, Flag: "--admin-listen", Key: config.KeyAdminListen, Optional: true})
	if err != nil || ln == nil {
		return err
	}
	p.lns[config.KeyAdminListen] = ln
	return nil
}

// adminServer serves the admin routes of mux (the query port's) on the
// admin listener; every other path is 404.
func (p *process) adminServer(mux http.Handler) component {
	res := tenant.NewResolver(tenant.Config{Multi: p.cfg.Multitenancy, Single: p.cfg.Tenant, Default: p.cfg.DefaultTenant}, nil)
	// Profiles are of the process, not of a tenant: they need none.
	h := res.HTTP(func(r *http.Request) (tenant.Need, bool) {
		return tenant.NeedAdmin, !strings.HasPrefix(r.URL.Path, "/debug/pprof")
	}, mux)
	return p.httpServer("admin", config.KeyAdminListen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminRoute(r) {
			httpapi.WriteError(w, http.StatusNotFound, "the admin listener serves /api/v1/admin/*, /api/v1/limits?all=1 and /debug/pprof/* only; the rest is on the query port")
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// closePublicAdmin refuses the admin routes on the query port when the
// admin listener is on and authentication is off (no admin right can be
// asked for there).
func (p *process) closePublicAdmin(h http.Handler) http.Handler {
	if p.cfg.AdminListen == "" || p.cfg.Auth.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if adminRoute(r) {
			httpapi.WriteError(w, http.StatusForbidden, "admin endpoints are served on the admin listener (admin_listen); on the query port they need authentication with the admin right")
			return
		}
		h.ServeHTTP(w, r)
	})
}
