"""The rules a till's Let'sTrade integration is judged by: each with an id, a one-line statement,
the passage of Let'sTrade's "POS Integration" document it comes from, and a severity.
Where the seed is silent (the time budget, what counts as consistent amounts) the statement says
what we assumed; `ASSUMPTIONS` lists those choices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ERROR = "error"
WARNING = "warning"

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "not_applicable"

# The seed gives the till no time budget for append-vouchers; the mock waits `pos_callback_timeout`
# (5 s) before giving up. A till that needs more than this is judged too slow (assumed).
APPEND_VOUCHERS_BUDGET_MS = 2000.0
# Amounts are compared to the cent, with one cent of rounding slack per product line (assumed).
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str  # the one-line statement
    severity: str
    source: str  # the seed passage, quoted


SPEC_VALID = Rule(
    "LTP-SPEC-VALID",
    "Every request to Let'sTrade is valid against openapi/letstrade-pos.yaml (path, bearer token, body).",
    ERROR,
    "Send the request exactly as per the /v1/get/offerings Offerings endpoint above, including full store_id, "
    "terminal_id, and complete basket payload in that same structure. | Each API call must include a valid "
    "bearer token in the Authorization header.",
)
OFFERINGS_ON_PRINT = Rule(
    "LTP-OFFERINGS-ON-PRINT",
    "get/offerings is called for a basket (bill print) before the basket is finalised.",
    ERROR,
    "When the bill is printed (pre-payment), the POS must call Get Offerings so that: Let'sTrade can calculate "
    "eligible offerings for the basket, and The POS can print a QR tied to the open bill.",
)
FINALISE_EVERY_BILL = Rule(
    "LTP-FINALISE-EVERY-BILL",
    "Every bill opened by get/offerings is closed by a successful finalise, also with no code, no QR scan and "
    "no vouchers (an open bill fails after --pos-bill-timeout seconds).",
    ERROR,
    "When the cashier closes the bill after payment, the POS must call Finalise Offerings every time, even if: "
    "no QR was scanned, no vouchers were applied, no offerings were returned.",
)
PASS_BACK = Rule(
    "LTP-PASS-BACK",
    "Finalise passes back the deals and vouchers of the basket's last get/offerings answer (and the vouchers "
    "Let'sTrade appended through append-vouchers).",
    ERROR,
    "deals: An array of deal objects from the offerings response — pass back any deals the POS applied. "
    "vouchers: An array of voucher objects from the offerings response — pass back any vouchers the POS applied. "
    "| vouchers: Voucher objects from the offerings response — pass back any product-level vouchers. deal: Deal "
    "object from the offerings response — pass back if a deal was applied to this product.",
)
EXTERNAL_ONLY_ON_OFFERINGS = Rule(
    "LTP-EXTERNAL-VOUCHERS",
    "external_vouchers are sent only to get/offerings, never to finalise.",
    ERROR,
    "Note: The external_vouchers field is not accepted on the finalise endpoint — external vouchers are only "
    "processed during get/offerings.",
)
NO_FINALISE_RETRY = Rule(
    "LTP-NO-FINALISE-RETRY",
    "A finalise answered 2xx is never sent again (same basket or same code): it is irreversible.",
    ERROR,
    "Once the finalise endpoint is called, the transaction is executed based on the rules linked to the code, "
    "and this action cannot be undone.",
)
EXPIRED_CODE = Rule(
    "LTP-EXPIRED-CODE",
    "A code answered 410 (expired) is not sent again: the till asks the customer for a new code.",
    ERROR,
    "Codes are set to have a 10-minute expiry from the moment they are generated. The user has 10 minutes to "
    "complete the transaction and use the code. If the code expires, a new code must be generated and passed.",
)
APPEND_VOUCHERS = Rule(
    "LTP-APPEND-VOUCHERS",
    "The till's append-vouchers endpoint answers per openapi/letstrade-pos-provider.yaml, accepts vouchers for "
    f"its open bills, within {APPEND_VOUCHERS_BUDGET_MS / 1000:g} s.",
    ERROR,
    "Important: This is NOT a Let\u2019sTrade endpoint. The POS provider must implement this endpoint on their side, "
    "and Let\u2019sTrade will call it to append vouchers to the open order. | Expected POS Behaviour: Validate the "
    "open bill exists and matches identifiers. Apply discounts / attach vouchers to the transaction. Update "
    "totals accordingly.",
)
AMOUNTS_CONSISTENT = Rule(
    "LTP-AMOUNTS",
    "Basket amounts add up: total = product lines (+ fees, + VAT when prices exclude it), 0 <= outstanding <= "
    "total, no negative price or quantity.",
    ERROR,
    "total: A number indicating the total amount of the basket, including all fees and taxes. | outstanding: A "
    "number representing the remaining amount to be paid after all discounts, fees, and vouchers have been "
    "applied. | price: A number representing the price of the product before any discounts are applied.",
)
DECIMAL_STRINGS = Rule(
    "LTP-DECIMAL-STRINGS",
    'Amounts and quantities are sent as the documented strings ("10.00"), not as JSON numbers.',
    WARNING,
    "total* string A number indicating the total amount of the basket, including all fees and taxes. | "
    "quantity* string A number indicating the quantity of the product in the basket. | price* string A number "
    "representing the price of the product before any discounts are applied.",
)

RULES: tuple[Rule, ...] = (
    SPEC_VALID,
    OFFERINGS_ON_PRINT,
    FINALISE_EVERY_BILL,
    PASS_BACK,
    EXTERNAL_ONLY_ON_OFFERINGS,
    NO_FINALISE_RETRY,
    EXPIRED_CODE,
    APPEND_VOUCHERS,
    AMOUNTS_CONSISTENT,
    DECIMAL_STRINGS,
)

ASSUMPTIONS: tuple[str, ...] = (
    "A bill is the traffic of one store_id + terminal_id + basket.uuid; it is closed by a 2xx finalise. Its "
    "--pos-bill-timeout is counted from its last get/offerings (a bill still being worked on is not abandoned).",
    f"append-vouchers has a budget of {APPEND_VOUCHERS_BUDGET_MS:g} ms (the seed names none); a non-2xx answer "
    "for a bill the till has not closed is a failure even when the status is documented.",
    "A violation that a more precise rule explains (external_vouchers on finalise, a JSON number where a string "
    "is documented) is reported by that rule only, not again by LTP-SPEC-VALID.",
    "Amounts: a product line costs quantity x (promotion_price when on_promotion, else price, plus its condiments "
    "per unit) plus its add-ons; total must equal the lines plus delivery, service and handling fees, with or "
    "without vat (prices with or without VAT); one cent of slack per line.",
)
