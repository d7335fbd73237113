"""Tests against a real multi-worker Odoo server (see README.md)."""
