from odoo import models
from odoo.http import request


class IrHttp(models.AbstractModel):
    """Two holes in Odoo's own request handling that our public routes expose: each
    answered a hostile request with a 500 before any code of ours ran."""

    _inherit = "ir.http"

    @classmethod
    def _dispatch(cls, endpoint):
        """Override of `base` to drop a query argument named ``self``: Odoo calls
        endpoint(**params), so ?self=1 is a TypeError ("multiple values for argument
        'self'") and a server error. No route takes a parameter "self"."""
        request.params.pop("self", None)
        return super()._dispatch(endpoint)

    @classmethod
    def _serve_fallback(cls):
        """Override of `base` to answer 404 to a path with a NUL: a 404 path is looked
        up as an attachment URL and the NUL would reach PostgreSQL ("A string literal
        cannot contain NUL"). It names no attachment."""
        if "\x00" in request.httprequest.path:
            return None
        return super()._serve_fallback()
