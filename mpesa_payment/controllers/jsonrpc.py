import werkzeug.exceptions

from odoo import http


class JsonRPCDispatcher(http.JsonRPCDispatcher):
    """Odoo's JSON-RPC dispatcher answers 400 to a body it cannot parse, but a body
    nested 10,000 deep (RecursionError) or whose params is not an object (TypeError
    in ``dict(params)``) became a 500 with its traceback: the payment form's route
    is public. Registered under the same routing type, this class replaces core's
    for every JSON route of the server while this addon is loaded; it only refuses
    what core would have crashed on, then hands over to core."""

    routing_type = "json"

    def dispatch(self, endpoint, args):
        """Override of `odoo.http` to answer 400 to a JSON-RPC body whose params are not an
        object (or too deeply nested), where core would fail with a server error."""
        try:
            data = self.request.get_json_data()
        except RecursionError:
            werkzeug.exceptions.abort(http.Response("Invalid JSON data", status=400))
        except ValueError:
            data = None  # core answers it
        if isinstance(data, dict) and not isinstance(data.get("params", {}), dict):
            werkzeug.exceptions.abort(
                http.Response("Invalid JSON-RPC data", status=400)
            )
        return super().dispatch(endpoint, args)
