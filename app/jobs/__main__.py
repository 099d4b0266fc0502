"""A worker process (:class:`app.jobs.worker.Worker` starts it): ``python -m app.jobs FD``, where FD is
its end of the socket pair the server talks through."""
import sys
from multiprocessing.connection import Connection

from .worker import serve

serve(Connection(int(sys.argv[1])))
