"""The HTML pages: sign-in, the admins' live dashboard, order pages, customers' "my orders",
and the two browser libraries served straight from node_modules."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from .activity import snapshot
from .auth import authenticate, visible_order
from .extensions import db
from .ids import parse_id
from .models import ConcurrentChange, Order, Product, User
from .orders import OrderError, place_order
from .serializers import order_dict, product_dict
from .status import OrderStatus

bp = Blueprint("pages", __name__)

# The only files /vendor serves: UMD/IIFE builds from node_modules, never copied into the repo.
VENDOR_FILES = {
    "pusher.js": "pusher-js/dist/web/pusher.js",
    "echo.js": "laravel-echo/dist/echo.iife.js",
}


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def _home_for(user: User) -> str:
    return url_for("pages.dashboard") if user.is_admin else url_for("pages.my_orders")


@bp.get("/")
def index() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    return redirect(url_for("pages.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        return render_template("login.html", form=form)
    if not form.validate_on_submit():
        return render_template("login.html", form=form), 400
    user = authenticate(form.email.data, form.password.data)
    if user is None:
        flash("Wrong email or password.")
        return render_template("login.html", form=form), 401
    login_user(user)
    return redirect(_home_for(user))


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out everywhere: copies of this cookie, other browsers and API tokens stop working."""
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    return redirect(url_for("pages.login"))


@bp.get("/admin/orders")
@login_required
def dashboard() -> ResponseReturnValue:
    if not current_user.is_admin:
        abort(403, description="the orders dashboard is for admins")
    orders = db.session.scalars(db.select(Order).order_by(Order.id.desc()))
    return render_template("orders.html", orders=[order_dict(o) for o in orders],
                           channel="admin.orders", title="All orders", show_customer=True,
                           activity=snapshot())


@bp.get("/orders")
@login_required
def my_orders() -> ResponseReturnValue:
    orders = db.session.scalars(
        db.select(Order).where(Order.user_id == current_user.id).order_by(Order.id.desc()))
    products = db.session.scalars(db.select(Product).order_by(Product.id))
    return render_template("orders.html", orders=[order_dict(o) for o in orders],
                           channel=f"user.{current_user.id}.orders", title="My orders",
                           show_customer=False, products=[product_dict(p) for p in products])


@bp.post("/orders")
@login_required
def place() -> ResponseReturnValue:
    """The no-JavaScript path of the "place an order" form."""
    product_id = parse_id(request.form.get("product_id", ""))
    quantity = request.form.get("quantity", "")
    try:
        place_order(current_user._get_current_object(), [{
            "product_id": product_id,
            "quantity": int(quantity) if quantity.isdecimal() and len(quantity) < 7 else None,
        }])
    except OrderError as exc:
        flash(str(exc))
    return redirect(url_for("pages.my_orders"))


@bp.get("/orders/<id:order_id>")
@login_required
def show_order(order_id: int) -> ResponseReturnValue:
    order = visible_order(current_user, order_id)
    channel = "admin.orders" if current_user.is_admin else f"user.{current_user.id}.orders"
    return render_template("order.html", order=order_dict(order, detail=True), channel=channel)


@bp.post("/orders/<id:order_id>/transition")
@login_required
def transition(order_id: int) -> ResponseReturnValue:
    """The no-JavaScript path of the order page's status buttons."""
    if not current_user.is_admin:
        abort(403, description="only admins may change an order's status")
    order = visible_order(current_user, order_id)
    try:
        order.transition_to(OrderStatus.parse(request.form.get("status")),
                            current_user._get_current_object(), request.form.get("notes") or None)
    except (ValueError, ConcurrentChange) as exc:  # unknown status, InvalidTransition, race
        flash(str(exc))
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
