"""WebSocket streams through the proxy (``docs/websockets.md``).

One stream, in order (``gateway``):

    identify -> route -> decide (as GET) -> connection limits -> credentials
      -> connect to the venue -> accept the client -> venue login -> relay both ways

Everything up to the venue connection refuses with the HTTP error contract before the
upgrade; after it, the proxy speaks in close codes (``frames``). Modules: ``admission``
(who may open which stream), ``limits`` (concurrent streams per client and per key),
``upstream`` (aiohttp, the venue side), ``relay`` (frames both ways), ``base`` + one module
per venue + ``logins`` (the registry): how each venue's stream login is done.
"""
