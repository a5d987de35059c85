"""Benchmarks of the signing proxy: ``python -m benchmarks.run`` (see ``benchmarks/README.md``).

Modules, in the order a run uses them:

* ``configs``   what is measured: each configuration's server and the request it is sent;
* ``upstream``  the fast venue stand-in (nginx ``return 200`` stub, or a raw asyncio server);
* ``nginx``     nginx config files: the upstream stub and the ``proxy_pass`` baseline;
* ``targets``   the server processes under test (the real proxy, pass-throughs, FastAPI + httpx);
* ``transports`` the httpx-based forwarders the transport comparison needs;
* ``procs``     starting pinned processes and waiting for their ports;
* ``loadgen``   the Python load generator (fixed rate; fixed concurrency when wrk is missing);
* ``wrk``       the wrk runner (fixed concurrency);
* ``micro``     micro-benchmarks of the hot-path pieces;
* ``report``    medians, ratios, targets, the table, JSON and the PNG chart;
* ``run``       the entry point.

Separate tools beside it: ``soak`` (memory and descriptors under mixed traffic) and
``transit`` (signing through Vault Transit against in-memory keys).
"""
