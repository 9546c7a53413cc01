"""gunicorn settings for serving the API with gunicorn itself rather than ``hopper-graph
serve``: ``gunicorn -c python:hopper_graph.cli.gunicorn_config 'api:create_app()'``.

They are the hooks ``serve`` installs: without them a stop waits for every open event
stream, which never ends by itself (gunicorn gives up after its 30 s graceful timeout).
"""

from hopper_graph.cli.server import end_streams as worker_int
from hopper_graph.cli.server import end_streams_on_stop as post_worker_init

__all__ = ["post_worker_init", "worker_int"]
