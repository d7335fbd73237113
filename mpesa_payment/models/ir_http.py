from odoo import models
from odoo.http import request


class IrHttp(models.AbstractModel):
    """Two holes in Odoo's own request handling that our public routes expose: each
    answered a hostile request with a 500 before any code of ours ran."""

    _inherit = "ir.http"

    @classmethod
    def _dispatch(cls, endpoint):
        # Odoo calls endpoint(**params): a query argument ?self=1 is a TypeError
        # ("multiple values for argument 'self'"). No route takes a parameter "self".
        request.params.pop("self", None)
        return super()._dispatch(endpoint)

    @classmethod
    def _serve_fallback(cls):
        # A 404 path is looked up as an attachment URL: a NUL in it reaches
        # PostgreSQL ("A string literal cannot contain NUL"). It names no attachment.
        if "\x00" in request.httprequest.path:
            return None
        return super()._serve_fallback()
