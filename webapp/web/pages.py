"""The HTML pages: sign-in, the admins' live dashboard, order pages, customers' "my orders",
the two browser libraries served straight from node_modules, and @resound/resume from its
package folder (clients/js)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired

from ..accounts.passwords import authenticate
from ..accounts.sessions import end_sessions
from ..broadcasting.presence import snapshot
from ..broadcasting.unit_of_work import commit
from ..extensions import db
from ..orders.ids import parse_id
from ..orders.models import ConcurrentChange, User
from ..orders.placing import OrderError, find_customer
from ..orders.products import Product
from ..orders.search import ALL, BadFilter
from ..orders.sort import next_sort
from ..orders.status import OrderStatus, transition_permission_error
from ..orders.summary import order_summary
from ..orders.times import utcnow
from . import idempotency
from .access import visible_order, visible_record
from .order_lists import order_list
from .pagination import BadPage, PageOutOfRange
from .placing import place_order, place_order_once
from .safe_redirect import local_path
from .serializers import order_dict, product_dict

bp = Blueprint("pages", __name__)

# The only files /vendor serves: UMD/IIFE builds from node_modules, never copied into the repo.
VENDOR_FILES = {
    "pusher.js": "pusher-js/dist/web/pusher.js",
    "echo.js": "laravel-echo/dist/echo.iife.js",
}


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    # Where to go after signing in (``?next=``, a local path only); hidden_tag() renders it.
    next = HiddenField()


def _home_for(user: User) -> str:
    return url_for("pages.dashboard") if user.is_admin else url_for("pages.my_orders")


@bp.get("/")
def index() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    return redirect(url_for("pages.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The sign-in form (GET and HEAD); signing in goes to ``next`` when it is a local path."""
    if request.method != "POST":
        next_path = local_path(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(next_path or _home_for(current_user))
        return render_template("login.html", form=LoginForm(next=next_path or ""))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400
    user = authenticate(form.email.data, form.password.data)
    if user is None:
        return render_template("login.html", form=form, error="Wrong email or password."), 401
    login_user(user)
    return redirect(local_path(form.next.data) or _home_for(user))


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out everywhere: copies of this cookie, other browsers and API tokens stop working."""
    commit(end_sessions(current_user._get_current_object()))
    logout_user()
    return redirect(url_for("pages.login"))


# A list page's query (see order_lists.order_list), in the order its URLs write them.
VIEW_ARGS = ("status", "q", "from", "to", "sort", "per_page", "page")


@bp.app_template_global()
def view_args(**changes: Any) -> dict[str, str]:
    """This list's query with ``changes`` (None removes an argument); changing anything but
    the page goes back to the first page."""
    args: dict[str, Any] = {name: request.args.get(name) for name in VIEW_ARGS}
    if set(changes) - {"page"}:
        args["page"] = None
    args.update(changes)
    return {name: str(value) for name, value in args.items() if value not in (None, "")}


@bp.app_template_global()
def view_url(**changes: Any) -> str:
    """This list page's URL with :func:`view_args` ``changes``."""
    return url_for(request.endpoint, **view_args(**changes))


bp.add_app_template_global(next_sort)


def _order_list(owner_id: int | None) -> dict:
    """The list the query string asks for (see order_lists.order_list); 400 when it is bad,
    a redirect to the last page from a page past it."""
    try:
        return order_list(request.args, owner_id, per_page_allowed=True)
    except (BadFilter, BadPage) as exc:
        abort(400, description=str(exc))
    except PageOutOfRange as exc:
        abort(redirect(view_url(page=exc.last)))


@bp.get("/admin/orders")
@login_required
def dashboard() -> ResponseReturnValue:
    if not current_user.is_admin:
        abort(403, description="the orders dashboard is for admins")
    return render_template("orders.html", **_order_list(None), channel="admin.orders",
                           title="All orders", show_customer=True, activity=snapshot(),
                           summary=order_summary(utcnow()))


@bp.get("/orders")
@login_required
def my_orders() -> ResponseReturnValue:
    products = db.session.scalars(db.select(Product).order_by(Product.id))
    # idempotency_key: fresh per page load, for the no-JS form's hidden field (a double
    # submit sends it twice and places one order); the page's script makes one per form fill.
    return render_template("orders.html", **_order_list(current_user.id),
                           channel=f"user.{current_user.id}.orders", title="My orders",
                           show_customer=False, products=[product_dict(p) for p in products],
                           idempotency_key=str(uuid4()))


@bp.app_template_filter("status_label")
def status_label(value: str) -> str:
    """What people read for a status ("Pending Payment"; "All" for every status): the one
    vocabulary of the tabs, badges and history, OrderStatus.label."""
    return "All" if value == ALL else OrderStatus(value).label


@bp.get("/admin/orders/new")
@login_required
def new_order() -> ResponseReturnValue:
    """An admin places an order for a customer: first the customer (``?customer=<id>``), then
    the products, with the customers' order form."""
    if not current_user.is_admin:
        abort(403, description="placing an order for a customer is for admins")
    customers = db.session.scalars(
        db.select(User).where(User.is_admin.is_(False)).order_by(User.name, User.id)).all()
    value, customer, error = request.args.get("customer"), None, None
    if value is not None:
        try:
            customer = find_customer(parse_id(value))
        except OrderError:
            error = "Choose one of the customers in the list."
    products = db.session.scalars(db.select(Product).order_by(Product.id))
    return render_template("new_order.html", customers=customers, customer=customer,
                           customer_error=error,
                           products=[product_dict(p) for p in products] if customer else [],
                           idempotency_key=str(uuid4())), 400 if error else 200


def _form_customer(user: User) -> User | None:
    """The customer the order form's ``user_id`` names (an admin placing an order for them),
    or None; 403 when a customer sends it, OrderError when it names no customer."""
    value = request.form.get("user_id")
    if value is None:
        return None
    if not user.is_admin:
        abort(403, description="only admins may place an order for a customer")
    return find_customer(parse_id(value))


def form_items(form: MultiDict[str, str]) -> list[dict]:
    """The order form's lines, repeated ``product_id`` and ``quantity`` fields in pairs, as
    the API's ``items``; lines with quantity 0 or empty are left out."""
    product_ids, quantities = form.getlist("product_id"), form.getlist("quantity")
    if len(product_ids) != len(quantities):
        raise OrderError("every product needs a quantity field; reload the page and try again")
    items = []
    for line, (product_id, text) in enumerate(zip(product_ids, quantities, strict=True), 1):
        text = text.strip()
        if text and not (text.isascii() and text.isdecimal() and len(text) < 7):
            raise OrderError(f"line {line}: the quantity must be a whole number, not {text!r}")
        if text and int(text) > 0:
            items.append({"product_id": parse_id(product_id), "quantity": int(text)})
    if not items:
        raise OrderError("choose a quantity of at least one product, then place the order")
    return items


@bp.post("/orders")
@login_required
def place() -> ResponseReturnValue:
    """The no-JavaScript path of the order form; a hidden ``idempotency_key`` field makes a
    double submit place one order. An admin's form for a customer has ``user_id`` and goes
    on to the new order's page."""
    user = current_user._get_current_object()
    key = request.form.get("idempotency_key") or None
    if key is not None and idempotency.key_error(key):
        abort(400, description="the form's idempotency_key is not valid; reload the page")
    back = url_for("pages.new_order" if "user_id" in request.form else "pages.my_orders")
    try:
        customer = _form_customer(user)
        if customer is not None:
            back = url_for("pages.new_order", customer=customer.id)
        items = form_items(request.form)
        if key is None:
            order = order_dict(place_order(customer or user, items, placed_by=user))
        else:
            order = place_order_once(user, key, items, customer).body["order"]
    except (OrderError, idempotency.KeyReused) as exc:
        flash(str(exc), "error")
        return redirect(back)
    if customer is None:
        flash(f"Order {order['order_number']} placed.", "success")
        return redirect(back)
    flash(f"Order {order['order_number']} placed for {customer.name}.", "success")
    return redirect(url_for("pages.show_order", order_id=order["id"]))


@bp.get("/orders/<id:order_id>")
@login_required
def show_order(order_id: int) -> ResponseReturnValue:
    order = visible_record(current_user, order_id)
    channel = "admin.orders" if current_user.is_admin else f"user.{current_user.id}.orders"
    return render_template("order.html", channel=channel,
                           order=order_dict(order, detail=True, for_admin=current_user.is_admin))


@bp.post("/orders/<id:order_id>/transition")
@login_required
def transition(order_id: int) -> ResponseReturnValue:
    """The no-JavaScript path of the order page's status buttons (an admin's, or a customer's
    "Cancel order" on her pending order; any other change of hers is 403)."""
    user = current_user._get_current_object()
    order = visible_order(user, order_id)
    try:
        target = OrderStatus.parse(request.form.get("status"))
        stale = order.stale_view_error(request.form.get("expected_status") or None)
        forbidden = transition_permission_error(user.is_admin, order.status, target)
        if stale:
            flash(stale, "error")
        elif forbidden:
            abort(403, description=forbidden)
        else:
            events = order.transition_to(target, user, request.form.get("notes") or None)
            commit(events)
            if events:
                flash(f"Order {order.order_number} is now {order.status.label}.", "success")
    except (ValueError, ConcurrentChange) as exc:  # unknown status, InvalidTransition, race
        flash(str(exc), "error")
    return redirect(url_for("pages.show_order", order_id=order_id))


@bp.get("/vendor/<name>")
def vendor(name: str) -> ResponseReturnValue:
    relative = VENDOR_FILES.get(name)
    if relative is None:
        abort(404, description=f"/vendor serves only {', '.join(sorted(VENDOR_FILES))}")
    path = Path(current_app.config["NODE_MODULES"]) / relative
    if not path.is_file():
        abort(404, description=f"{path} is missing; run npm ci (scripts/setup.sh)")
    return send_file(path, mimetype="text/javascript", max_age=3600)


@bp.get("/vendor/resume/<name>")
def resume_module(name: str) -> ResponseReturnValue:
    """A file of @resound/resume (``index.js`` and the modules it imports), as it is in the
    package; nothing outside its folder."""
    if not name.endswith(".js"):
        abort(404, description="/vendor/resume/ serves only the module's .js files")
    return send_from_directory(current_app.config["RESUME_MODULE"], name,
                               mimetype="text/javascript", max_age=3600)
