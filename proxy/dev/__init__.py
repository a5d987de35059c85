"""Development tooling: the demo, the local stack (OpenBao dev server + simulators + proxy), helpers.

The top floor: may import anything; nothing in the product imports it except the `demo` command.
"""
