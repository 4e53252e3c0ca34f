"""Resound webapp: Flask order management that broadcasts every order change."""
