"""Records as LOKE prints them (camelCase, ISO 8601 timestamps with `Z`, money in cents). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mock_server.apis.loke.store import (
    Customer,
    CustomerList,
    Location,
    Member,
    Order,
    OrgState,
    Payment,
    Statistics,
    Subscription,
)
from mock_server.clock import isoformat


def when(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


def statistics(stats: Statistics) -> dict[str, Any]:
    return {
        "pointsBalance": stats.points_balance,
        "totalPointsEarned": stats.total_points_earned,
        "totalPointsRedeemed": stats.total_points_redeemed,
        "totalSpend": stats.total_spend,
        "lastPointsEarnedAt": when(stats.last_points_earned_at),
        "lastPointsRedeemedAt": when(stats.last_points_redeemed_at),
        "lastSpentAt": when(stats.last_spent_at),
    }


def customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "email": c.email,
        "phoneNumber": c.phone_number,
        "dob": c.dob,
        "gender": c.gender,
        "hasAgreedToMarketing": c.has_agreed_to_marketing,
        "createdAt": isoformat(c.created_at),
        "updatedAt": isoformat(c.updated_at),
        "statistics": statistics(c.statistics),
    }


def customer_tiny(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "email": c.email,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "phoneNumber": c.phone_number,
    }


def organization(state: OrgState) -> dict[str, Any]:
    return {"id": state.org.id, "name": state.org.name}


def location(loc: Location) -> dict[str, Any]:
    return {"id": loc.id, "name": loc.name}


def payment(p: Payment, state: OrgState) -> dict[str, Any]:
    return {
        "id": p.id,
        "billingType": p.billing_type,
        "chargedAmount": p.charged_amount,
        "creditAmount": p.credit_amount,
        "discountAmount": p.discount_amount,
        "externalAmount": p.external_amount,
        "feeAmount": p.fee_amount,
        "currency": p.currency,
        "createdAt": isoformat(p.created_at),
        "completedAt": when(p.completed_at),
        "customer": customer_tiny(state.customers[p.customer_id]),
        "items": p.items,
    }


def order(o: Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "status": o.status,
        "total": o.total,
        "createdAt": isoformat(o.created_at),
        "items": o.items,
    }


def customer_list(cl: CustomerList) -> dict[str, Any]:
    return {
        "id": cl.id,
        "name": cl.name,
        "memberCount": len(cl.members),
        "createdAt": isoformat(cl.created_at),
    }


def member(m: Member, c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "addedAt": isoformat(m.added_at),
        "email": c.email,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "phoneNumber": c.phone_number,
    }


def webhook(s: Subscription) -> dict[str, Any]:
    """A subscription as LOKE returns it: never the secret."""
    return {"events": list(s.events), "id": s.id, "ref": s.ref, "url": s.url}
