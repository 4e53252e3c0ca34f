"""Issue 20, the pages: an admin's "New order" for a customer, a customer's "Cancel order", the
same 404 for another customer's order, no admin link on a customer's page, no editor on a final
order, one vocabulary of statuses, the sign-in error in its card.

Seeded orders: 6 alice pending, 5 alice paid, 4 bob processing, 3 bob shipped, 2 alice
delivered, 1 bob cancelled; users 1 admin, 2 alice, 3 bob."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.clients.webapp_api import LABELS
from tests.webapp.conftest import ADMIN, ALICE, csrf_token, sign_in

CSRF_VALUES = re.compile(r'(name="csrf[-_]token" (?:content|value)=")[^"]+"')


class Elements(HTMLParser):
    """Every start tag's attributes, and the text inside each element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in {"input", "meta", "link", "br", "img"}:
            self._open.append(attributes.get("id"))
            if attributes.get("id"):
                self.texts.setdefault(attributes["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data

    def by_id(self, element_id: str) -> dict[str, str | None] | None:
        return next((attrs for _, attrs in self.tags if attrs.get("id") == element_id), None)

    def hrefs(self) -> list[str]:
        return [attrs["href"] for tag, attrs in self.tags if tag == "a" and attrs.get("href")]


def page(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    return answer.get_data(as_text=True)


# --- an admin's new order for a customer ---------------------------------------------------------


def test_new_order_page_first_chooses_a_customer_then_the_products(client):
    sign_in(client, ADMIN)
    dashboard = Elements(page(client, "/admin/orders"))
    assert dashboard.by_id("new-order-link")["href"] == "/admin/orders/new"

    chooser = page(client, "/admin/orders/new")
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', chooser)
    assert [name for _, name in options] == ["Alice Customer (alice@example.com)",
                                             "Bob Customer (bob@example.com)"]
    assert 'id="new-order"' not in chooser

    form = Elements(page(client, "/admin/orders/new?customer=3"))
    assert form.by_id("new-order")["action"] == "/orders"
    assert ("input", {"type": "hidden", "name": "user_id", "value": "3"}) in form.tags
    assert "Place an order for Bob Customer" in form.texts["new-order-title"]


@pytest.mark.parametrize("value", ["1", "999", "x"])
def test_new_order_page_says_next_to_the_list_when_the_customer_is_not_one(client, value):
    sign_in(client, ADMIN)
    answer = client.get(f"/admin/orders/new?customer={value}")
    assert answer.status_code == 400
    html = Elements(answer.get_data(as_text=True))
    select = html.by_id("customer")
    assert select["aria-invalid"] == "true" and select["aria-describedby"] == "customer-error"
    assert "Choose one of the customers" in html.texts["customer-error"]


def test_customers_cannot_open_the_new_order_page_or_order_for_another(client):
    token = sign_in(client, ALICE)
    assert client.get("/admin/orders/new").status_code == 403
    answer = client.post("/orders", data={"product_id": "1", "quantity": "1", "user_id": "3",
                                          "csrf_token": token})
    assert answer.status_code == 403
    assert "Bob Customer" not in page(client, "/orders")


def test_the_no_script_form_places_the_order_for_the_customer_and_opens_it(client):
    token = sign_in(client, ADMIN)
    answer = client.post("/orders", data={"product_id": "2", "quantity": "1", "user_id": "2",
                                          "csrf_token": token})
    assert answer.status_code == 302
    order_page = page(client, answer.headers["Location"])
    assert "placed for Alice Customer" in order_page
    assert "alice@example.com" in order_page


def test_the_no_script_form_goes_back_to_the_customer_with_the_reason(client):
    token = sign_in(client, ADMIN)
    answer = client.post("/orders", data={"product_id": "2", "quantity": "9999", "user_id": "2",
                                          "csrf_token": token})
    assert answer.headers["Location"] == "/admin/orders/new?customer=2"
    assert "above 1000" in page(client, answer.headers["Location"])


# --- a customer's cancel -------------------------------------------------------------------------


def test_a_customers_pending_order_has_cancel_only_and_no_notes(client):
    sign_in(client, ALICE)
    html = page(client, "/orders/6")
    assert re.findall(r'<button type="submit" name="status" value="(\w+)">', html) == ["cancelled"]
    assert 'id="notes"' not in html
    assert 'id="editor"' not in page(client, "/orders/5")  # paid: hers to watch, not to change


def test_a_customer_cancels_from_the_page_without_javascript(client):
    token = sign_in(client, ALICE)
    answer = client.post("/orders/6/transition", data={
        "status": "cancelled", "expected_status": "pending", "csrf_token": token})
    assert answer.headers["Location"] == "/orders/6"
    html = page(client, "/orders/6")
    assert "is now Cancelled" in html
    assert 'id="editor"' not in html
    assert client.post("/orders/5/transition", data={
        "status": "cancelled", "csrf_token": token}).status_code == 403


# --- odd URLs ------------------------------------------------------------------------------------


def same_page(answer, order_id: int) -> tuple[int, str]:
    """Status and page, with the CSRF tokens and the order id asked for blanked."""
    html = CSRF_VALUES.sub(r'\1"', answer.get_data(as_text=True))
    return answer.status_code, html.replace(f"order {order_id} ", "order N ")


def test_another_customers_order_page_is_the_same_404_as_none(client):
    token = sign_in(client, ALICE)
    assert same_page(client.get("/orders/4"), 4) == same_page(client.get("/orders/999"), 999)
    assert client.get("/orders/4").status_code == 404
    form = {"status": "cancelled", "csrf_token": token}
    bobs, none = client.post("/orders/4/transition", data=form), client.post(
        "/orders/999/transition", data=form)
    assert same_page(bobs, 4) == same_page(none, 999)
    assert bobs.status_code == 404


@pytest.mark.parametrize("path", ["/orders", "/orders?status=refunded", "/orders?q=nothing-here",
                                  "/orders/6", "/orders/5", "/orders/999"])
def test_a_customers_pages_never_link_to_an_admin_page(client, path):
    sign_in(client, ALICE)
    html = client.get(path).get_data(as_text=True)
    hrefs = Elements(html).hrefs()
    assert hrefs and not [href for href in hrefs if href.startswith("/admin")]


def test_a_customers_empty_filter_links_back_to_her_orders(client):
    sign_in(client, ALICE)
    empty = Elements(page(client, "/orders?status=refunded"))
    assert "No orders match this filter" in empty.texts["orders-empty"]
    assert ("a", {"href": "/orders"}) in empty.tags


@pytest.mark.parametrize("order_id", [1, 2, "refunded"])
def test_final_orders_show_no_editor(client, order_id):
    token = sign_in(client, ADMIN)
    if order_id == "refunded":
        client.post("/api/orders/5/transition", json={"status": "refunded"},
                    headers={"X-CSRF-TOKEN": token})
        order_id = 5
    html = page(client, f"/orders/{order_id}")
    for part in ('id="editor"', 'id="transitions"', 'id="notes"', 'name="status"'):
        assert part not in html, part
    assert 'id="editor"' in page(client, "/orders/3")  # shipped: still the admin's to move


# --- one vocabulary ------------------------------------------------------------------------------


def test_tabs_badges_and_history_use_the_status_labels(client):
    sign_in(client, ADMIN)
    dashboard = Elements(page(client, "/admin/orders"))
    tabs = {attrs["data-tab"]: None for _, attrs in dashboard.tags if "data-tab" in attrs}
    html = page(client, "/admin/orders")
    for status in tabs:
        label = "All" if status == "all" else LABELS[status]
        assert re.search(rf'data-tab="{status}"[^>]*>{label}\s*<span', html), status
    order = page(client, "/orders/5")  # pending, then paid
    entries = re.findall(r'<li data-to="(\w+)">(.*?)</li>', order, re.DOTALL)
    assert [to for to, _ in entries] == ["pending", "paid"]
    assert ('<span class="from">Pending Payment →</span> '
            '<span class="badge" data-status="paid">Paid</span>') in entries[1][1]
    assert '<span class="badge" data-status="pending">Pending Payment</span>' in entries[0][1]


# --- sign-in -------------------------------------------------------------------------------------


def test_a_refused_sign_in_says_so_in_the_card_with_the_email_focused(client):
    answer = client.post("/login", data={"email": ADMIN, "password": "nope",
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 401
    html = answer.get_data(as_text=True)
    card = html[html.index('<section class="card login-card"'):html.index("</section>")]
    assert 'role="alert">Wrong email or password.</p>' in card
    assert 'class="flash' not in html
    email = Elements(html).by_id("email")
    assert "autofocus" in email and email["aria-describedby"] == "login-error"


def test_an_empty_field_is_marked_next_to_itself(client):
    answer = client.post("/login", data={"email": "", "password": "x",
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 400
    html = Elements(answer.get_data(as_text=True))
    email = html.by_id("email")
    assert email["aria-invalid"] == "true" and email["aria-describedby"] == "email-error"
    assert "required" in html.texts["email-error"]
    assert html.by_id("password").get("aria-invalid") is None
