"""gunicorn settings for serving the API with gunicorn itself rather than ``hopper-graph
serve``: ``gunicorn -c python:hopper_graph.cli.gunicorn_config 'api:create_app()'``.

They are the hooks ``serve`` installs: without them a stop waits for every open event
stream, which never ends by itself (gunicorn gives up after its 30 s graceful timeout). And
the keep-alive and worker ``serve`` sets: idle connections stay open 75 s, longer than
clients and load balancers keep theirs, and the worker reads each request whole before a
thread runs it, so slow clients hold no thread (docs/api.md, "Connections"). ``-k`` on the
command line overrides the worker class: do not pass it.
"""

from hopper_graph.cli.server import KEEPALIVE_SECONDS as keepalive
from hopper_graph.cli.server import WORKER_CLASS as worker_class
from hopper_graph.cli.server import end_streams as worker_int
from hopper_graph.cli.server import end_streams_on_stop as post_worker_init

__all__ = ["keepalive", "post_worker_init", "worker_class", "worker_int"]

# The log format of `serve` (HOPPER_LOG_FORMAT), the access line with its X-Request-ID, and
# the workers' shared metrics store (HOPPER_METRICS, PROMETHEUS_MULTIPROC_DIR).
from hopper_graph.cli.observe import ACCESS_LOG_FORMAT as access_log_format
from hopper_graph.cli.observe import LOGGER_CLASS as logger_class
from hopper_graph.cli.observe import child_exit, on_exit, on_starting

__all__ += ["access_log_format", "child_exit", "logger_class", "on_exit", "on_starting"]
