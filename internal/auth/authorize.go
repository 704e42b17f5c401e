package auth

import (
	"fmt"
	"slices"
	"strings"
)

// TenantSeparator separates the tenants of a read across tenants in
// X-Scope-OrgID ("a|b"), as Tempo and Cortex spell it.
const TenantSeparator = "|"

// Authorize checks that p may act on requested with need. requested is the
// tenant the request names (X-Scope-OrgID): "" when it names none, or
// several tenants joined by "|" for a read across tenants.
//
// It returns the tenant(s) the request acts for:
//   - a token bound to one tenant: that tenant, when requested is "" or
//     that tenant; any other is forbidden;
//   - an operator token (Tenants): requested, when every tenant it names is
//     in the list (or the list is "*"); with requested "", the one tenant of
//     a one-tenant list, or "" (the caller's default tenant) for "*".
//
// Several tenants need only Read: writing and administering act on one
// tenant. Refusals wrap ErrForbidden and say who may not do what to which
// tenant ("token ci may not write tenant acme"); the caller counts them
// (Authenticator.Forbidden).
func (p Principal) Authorize(requested string, need Right) (string, error) {
	if !p.Rights.Has(need) {
		return "", fmt.Errorf("%w: %s may not %s (its rights: %s)", ErrForbidden, p.who(), verb(need), p.Rights)
	}
	var names []string
	if requested != "" {
		names = strings.Split(requested, TenantSeparator)
		if len(names) > 1 && need != Read {
			return "", fmt.Errorf("%w: %s names %d tenants; only reads may span tenants", ErrForbidden, quoteTenant(requested), len(names))
		}
		for _, n := range names {
			if n == "" {
				return "", fmt.Errorf("%w: %s names an empty tenant", ErrForbidden, quoteTenant(requested))
			}
		}
	}
	if p.Tenant != "" {
		for _, n := range names {
			if n != p.Tenant {
				return "", fmt.Errorf("%w: %s may not %s tenant %s (it acts for tenant %s)", ErrForbidden, p.who(), verb(need), quoteTenant(n), quoteTenant(p.Tenant))
			}
		}
		return p.Tenant, nil
	}
	if len(p.Tenants) == 0 {
		return "", fmt.Errorf("%w: %s is bound to no tenant", ErrForbidden, p.who())
	}
	all := slices.Contains(p.Tenants, "*")
	if len(names) == 0 {
		switch {
		case all:
			return "", nil
		case len(p.Tenants) == 1:
			return p.Tenants[0], nil
		}
		return "", fmt.Errorf("%w: %s acts for several tenants (%s): name one in X-Scope-OrgID", ErrForbidden, p.who(), strings.Join(p.Tenants, ", "))
	}
	if !all {
		for _, n := range names {
			if !slices.Contains(p.Tenants, n) {
				return "", fmt.Errorf("%w: %s may not %s tenant %s", ErrForbidden, p.who(), verb(need), quoteTenant(n))
			}
		}
	}
	return requested, nil
}

// who names p in messages.
func (p Principal) who() string {
	if p.Name == "" {
		return "an unnamed principal"
	}
	return fmt.Sprintf("token %q", p.Name)
}

// verb is what need does, for messages.
func verb(need Right) string {
	switch need {
	case Write:
		return "write"
	case Read:
		return "read"
	case Admin:
		return "administer"
	}
	return need.String()
}

// quoteTenant quotes a tenant from a request for a message, bounded so that
// an overlong header does not make an overlong answer.
func quoteTenant(t string) string {
	const max = 160
	if len(t) > max {
		return fmt.Sprintf("%q…", t[:max])
	}
	return fmt.Sprintf("%q", t)
}
