"""Plain-Python Daraja layer: HTTP client and payload parsing (no Odoo imports)."""
