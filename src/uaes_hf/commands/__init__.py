"""One module per ``uaes`` subcommand, each with ``register(subparsers)``.

A command module parses arguments and calls the library; it computes nothing itself.
"""
