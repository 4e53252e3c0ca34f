#!/usr/bin/env bash
# Retake the README's webapp screenshots, 1280 and 390 px wide, from the browser suite (headless
# Chromium against the webapp and a broadcaster; axe-core checks each page it shoots): the admin
# dashboard after a live change, and a customer's orders. Needs `scripts/setup.sh test` first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q \
  "tests/clients/test_browser_live.py::test_admin_dashboard_shows_a_new_order_and_its_status_change_live" \
  "tests/clients/test_browser_desk_people.py::test_the_customers_pages_on_a_phone"
mkdir -p docs/screenshots
for name in admin-dashboard-row-updated customer-phone-orders; do
  for suffix in "" -390; do
    cp "artifacts/screenshots/$name$suffix.png" docs/screenshots/
  done
done
echo "docs/screenshots/ retaken"
