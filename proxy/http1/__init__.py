"""A purpose-built HTTP/1.1 client for the one thing the proxy sends: a signed request to a
configured venue origin, answered once.

* ``request``: pure serialisation and validation of the request head (``encode_request``);
* ``origin``: a configured origin split into what the socket and the ``Host`` header need;
* ``connection``: one keep-alive connection, an asyncio ``Protocol`` parsing the answer with
  ``httptools`` (llhttp);
* ``pool``: per-origin LIFO idle connections under one bound on open connections;
* ``client``: the three put together (``Client.request``);
* ``errors``: what can go wrong, split by whether any byte may have reached the venue.

Nothing here knows the rest of the proxy: ``proxy.forward`` maps these failures to the
proxy's errors and owns the deadline and the one retry it allows.
"""
